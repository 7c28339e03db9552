"""Which MinHash implementation posttrain dedup uses, by measurement: rensa, numpy, datasketch.

All three sign the same shingles (posttrain's word 5-gram hashes, 64-bit) with 128 slots:

* **rensa** ``RMinHash.digest_matrix_from_flat_token_hashes``: one call per batch (Rust).
* **numpy**: the classic affine permutations ``(a·h + b) mod 2^32`` (a odd, uint32
  arithmetic), minimum per document with ``np.minimum.reduceat``, vectorized over chunks
  of 256 documents.
* **datasketch** ``MinHash(num_perm, seed).update_batch`` per document, given the same
  hashes (``hashfunc`` keeps their high 32 bits, so it does no SHA-1 work of its own).

Speed is measured on ``--mb`` MB of venv source (best of ``--repeats``); accuracy is the
error of each estimate against the exact Jaccard similarity of the shingle sets of the
6,000 documents' 3,000 labelled pairs (``tests/data/near_dup_pairs.jsonl.gz``).

Usage:
    .venv/bin/python bench/dedup_backends.py [--mb 10] [--repeats 3]
"""

import argparse
import random
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow as pa

from posttrain.platform.dedup import DedupConfig
from posttrain.platform.dedup.evaluation import load_labelled_pairs
from posttrain.platform.dedup.minhash import shingle_hashes, signatures, word_hashes
from posttrain.platform.dedup.normalize import normal_form, words

REPO = Path(__file__).resolve().parents[1]
LABELLED = REPO / "tests" / "data" / "near_dup_pairs.jsonl.gz"

CONFIG = DedupConfig()
Shingles = tuple[np.ndarray, np.ndarray]  # flat 64-bit hashes, per-document offsets
Backend = Callable[[np.ndarray, np.ndarray], np.ndarray]


def shingles_of(texts: list[str]) -> Shingles:
    flat_words, offsets = words(normal_form(pa.array(texts, pa.string())))
    return shingle_hashes(word_hashes(flat_words), offsets, CONFIG.ngram)


def rensa_rows(flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return signatures(flat, offsets, CONFIG.num_perm, CONFIG.seed)


def numpy_rows(flat: np.ndarray, offsets: np.ndarray, docs_per_chunk: int = 256) -> np.ndarray:
    rng = np.random.default_rng(CONFIG.seed)
    a = rng.integers(0, 2**32, CONFIG.num_perm, dtype=np.uint32) | np.uint32(1)  # odd: bijective
    b = rng.integers(0, 2**32, CONFIG.num_perm, dtype=np.uint32)
    values = (flat >> np.uint64(32)).astype(np.uint32)
    rows = np.full((len(offsets) - 1, CONFIG.num_perm), np.iinfo(np.uint32).max, np.uint32)
    for first in range(0, len(offsets) - 1, docs_per_chunk):
        bounds = offsets[first : first + docs_per_chunk + 1]
        permuted = values[bounds[0] : bounds[-1], None] * a + b  # uint32 arithmetic wraps
        starts = bounds[:-1] - bounds[0]
        non_empty = np.diff(bounds) > 0
        if non_empty.any():
            minima = np.minimum.reduceat(permuted, starts[non_empty], axis=0)
            rows[first + np.flatnonzero(non_empty)] = minima
    return rows


def datasketch_rows(flat: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    from datasketch import MinHash

    template = MinHash(num_perm=CONFIG.num_perm, seed=CONFIG.seed)
    rows = []
    hashes: list[int] = (flat >> np.uint64(32)).tolist()
    for start, stop in pairwise(offsets.tolist()):
        sketch = MinHash(
            num_perm=CONFIG.num_perm,
            seed=CONFIG.seed,
            hashfunc=int,
            permutations=template.permutations,
            scheme=template.scheme,
        )
        sketch.update_batch(hashes[start:stop])
        rows.append(sketch.hashvalues)
    return np.asarray(rows, dtype=np.uint32)


BACKENDS: dict[str, Backend] = {
    "rensa": rensa_rows,
    "numpy": numpy_rows,
    "datasketch": datasketch_rows,
}


def corpus_texts(megabytes: float) -> list[str]:
    from posttrain.platform.dedup.venv_text import iter_code_chunks

    texts, size = [], 0
    for chunk in iter_code_chunks(random.Random(20261125), 1000, 8000):
        texts.append(chunk.text)
        size += len(chunk.text.encode())
        if size >= megabytes * 1e6:
            return texts
    return texts


def best_seconds(backend: Backend, shingles: Shingles, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        backend(*shingles)
        best = min(best, time.perf_counter() - start)
    return best


def estimation_errors(backend: Backend, pairs: pa.Table) -> np.ndarray:
    """Estimated minus exact Jaccard similarity of every labelled pair with shingles."""
    texts = pairs["text_a"].to_pylist() + pairs["text_b"].to_pylist()
    flat, offsets = shingles_of(texts)
    rows = backend(flat, offsets)
    sets = [set(flat[start:stop].tolist()) for start, stop in pairwise(offsets)]
    half = pairs.num_rows
    errors = []
    for index in range(half):
        first, second = sets[index], sets[index + half]
        if first and second:
            exact = len(first & second) / len(first | second)
            errors.append((rows[index] == rows[index + half]).mean() - exact)
    return np.asarray(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="MB of text to sign")
    parser.add_argument("--repeats", type=int, default=3, help="runs per backend; best counts")
    args = parser.parse_args()
    texts = corpus_texts(args.mb)
    shingles = shingles_of(texts)
    pairs = load_labelled_pairs(LABELLED)
    print(
        f"{len(texts):,} documents, {sum(len(t.encode()) for t in texts) / 1e6:.1f} MB, "
        f"{len(shingles[0]):,} shingles; {CONFIG.num_perm} slots, word {CONFIG.ngram}-grams"
    )
    seconds = {}
    for name, backend in BACKENDS.items():
        seconds[name] = best_seconds(backend, shingles, args.repeats)
        errors = estimation_errors(backend, pairs)
        print(
            f"{name}: {seconds[name]:.3f} s, {len(shingles[0]) / seconds[name] / 1e6:,.2f} M "
            f"shingles/s; Jaccard error on {len(errors):,} labelled pairs: bias "
            f"{errors.mean():+.4f}, s.d. {errors.std():.4f}, max |error| {np.abs(errors).max():.3f}"
        )
    print(
        f"ratio rensa vs numpy: {seconds['numpy'] / seconds['rensa']:.0f}x faster; "
        f"rensa vs datasketch: {seconds['datasketch'] / seconds['rensa']:.0f}x faster"
    )


if __name__ == "__main__":
    main()
