"""The C normalizer (``csrc/fastnorm.c``) gives the numpy path's numbers, byte for byte."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from posttrain.platform.dedup import DedupConfig, deduplicate, fingerprints
from posttrain.platform.dedup._ascii import HAS_NATIVE, ascii_normalize, native_ascii_normalize
from posttrain.platform.dedup.minhash import numpy_shingle_hashes, shingle_hashes, word_hashes
from posttrain.platform.execution import InProcessExecutor


def _reference(texts: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    forms, flat_words, offsets = ascii_normalize(texts)
    return forms, word_hashes(flat_words), offsets


def _assert_same(texts: pa.Array) -> None:
    native_forms, native_hashes, native_offsets = native_ascii_normalize(texts)
    forms, hashes, offsets = _reference(texts)
    assert native_forms.to_pylist() == forms.to_pylist()
    assert native_hashes.tolist() == hashes.tolist()
    assert native_offsets.tolist() == offsets.tolist()


def _random_texts(seed: int, count: int, alphabet: list[str], longest: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(alphabet, k=rng.randint(0, longest))) for _ in range(count)]


def test_the_c_normalizer_is_built_by_make_install() -> None:
    # setup.py marks it optional (a machine without a compiler still installs), so this is
    # where a silently failed build shows.
    assert HAS_NATIVE, "posttrain/platform/dedup/_fastnorm was not built: run `make install`"


def test_every_ascii_character_normalizes_and_hashes_as_the_numpy_path_does() -> None:
    alphabet = [chr(code) for code in range(128)]
    texts = _random_texts(7, 3000, alphabet, 80)
    texts += ["", " ", "  a  ", "\x00", "\x1f\x1c", "a", "A.B", " \t\n"]
    _assert_same(pa.array([*texts, None], pa.string()))


def test_words_of_every_length_hash_as_xxh3_does() -> None:
    # XXH3 has separate code for 0-3, 4-8, 9-16, 17-128, 129-240 and longer inputs.
    lengths = [1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 1024, 5000]
    texts = [" ".join("w" * length for _ in range(3)) for length in lengths]
    _assert_same(pa.array(texts))


def test_non_ascii_bytes_are_word_bytes_as_in_the_numpy_path() -> None:
    # Such rows are redone by the Unicode rules afterwards; only their words must agree
    # here (the numpy path also trims Unicode spaces off their forms, which is moot).
    alphabet = ["a", " ", ".", "é", "—", "\u00a0", "Ｈ", "🙂", "\n"]
    texts = pa.array(_random_texts(11, 500, alphabet, 40))
    _, native_hashes, native_offsets = native_ascii_normalize(texts)
    _, hashes, offsets = _reference(texts)
    assert native_hashes.tolist() == hashes.tolist()
    assert native_offsets.tolist() == offsets.tolist()


def test_a_sliced_array_gives_the_numbers_of_its_own_texts() -> None:
    texts = pa.array(["DROP  me", " Kept,  Row ", "x ab", "cd y", "also dropped"])
    _assert_same(texts.slice(1, 3))
    forms, _, offsets = native_ascii_normalize(texts.slice(1, 3))
    assert forms.to_pylist() == ["kept, row", "x ab", "cd y"]
    assert offsets.tolist() == [0, 2, 4, 6]


def test_an_empty_batch_has_no_forms_and_no_words() -> None:
    forms, hashes, offsets = native_ascii_normalize(pa.array([], pa.string()))
    assert len(forms) == 0 and len(hashes) == 0 and offsets.tolist() == [0]


def test_offsets_outside_the_data_are_refused_not_read() -> None:
    from posttrain.platform.dedup import _fastnorm as native

    table = bytes(256)
    out = np.empty(8, np.uint8), np.empty(2, np.int64), np.empty(8, np.uint64)
    with pytest.raises(ValueError, match="outside data"):
        native.normalize_ascii(
            b"abc", np.array([0, 99], np.int64), table, table, out[0], out[1], out[2], out[1].copy()
        )
    with pytest.raises(ValueError, match="must not decrease"):
        native.normalize_ascii(
            b"abc",
            np.array([0, 2, 1, 3], np.int64),
            table,
            table,
            out[0],
            np.empty(4, np.int64),
            out[2],
            np.empty(4, np.int64),
        )


def test_dedup_results_are_the_same_without_the_c_normalizer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = _random_texts(3, 200, [*"abcdefgh  .,\n", "é"], 300)
    texts = base + [text.upper() + " x" for text in base[:50]] + base[:20]
    table = pa.table({"record_id": [f"r{i:04d}" for i in range(len(texts))], "text": texts})
    with_native = deduplicate(table, DedupConfig(), InProcessExecutor(), text_column="text")
    monkeypatch.setattr(fingerprints, "HAS_NATIVE", False)
    without = deduplicate(table, DedupConfig(), InProcessExecutor(), text_column="text")
    assert with_native.assignments.equals(without.assignments)
    assert with_native.fingerprints.equals(without.fingerprints)
    assert with_native.stats.exact_duplicates >= 20 and with_native.stats.near_duplicates > 0


@pytest.mark.parametrize("ngram", [1, 2, 5])
def test_shingle_hashes_in_c_are_the_numpy_ones(ngram: int) -> None:
    rng = np.random.default_rng(ngram)
    lengths = rng.integers(0, 12, size=300)
    lengths[:4] = [0, 1, ngram - 1 or 1, ngram]
    hashes = rng.integers(0, 2**64, size=int(lengths.sum()), dtype=np.uint64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    native, native_offsets = shingle_hashes(hashes, offsets, ngram)
    reference, reference_offsets = numpy_shingle_hashes(hashes, offsets, ngram)
    assert native.tolist() == reference.tolist()
    assert native_offsets.tolist() == reference_offsets.tolist()
