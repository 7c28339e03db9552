"""Build the labelled near-duplicate set used to test and benchmark dedup quality.

    .venv/bin/python scripts/make_near_dup_set.py [--out tests/data/near_dup_pairs.jsonl.gz]

Every pair is two documents and a label. Documents are real text from the project venv
(docstrings, package descriptions and source code of the pinned packages, see
``posttrain/platform/dedup/venv_text.py``); nothing is synthesised from templates.

* **Duplicates** (``duplicate: true``): a document and a copy with one or two edits that
  occur in practice (``near_dup_edits.py``): ``typos``, ``reorder``, ``boilerplate``,
  ``truncate``, ``whitespace_case``, ``unicode``, and ``combined`` (two of them).
* **Hard negatives** (``duplicate: false``): two different documents on the same topic:
  ``same_file`` (two docstrings or chunks of one module), ``same_package`` (two files of
  one package: same vocabulary, same templates), ``shared_boilerplate`` (same package and
  the same boilerplate block added to both), ``partial_overlap`` (two overlapping excerpts
  of one document, as a sliding-window chunker or a page and its continuation make: they
  share 25–40 % of a source whose lines are at least 90 % distinct). Any other candidate
  negative is discarded when half or more of the shorter document's lines (compared by
  their words only) also occur in the other: such a pair is a copy (vendored code, the
  same licence header in two comment styles), not a negative.

The output is deterministic (fixed seed, hash-ordered files, gzip without a timestamp), so
rerunning the script on the same venv reproduces the committed file byte for byte.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from near_dup_edits import (
    CODE_BOILERPLATE,
    PROSE_BOILERPLATE,
    Edit,
    boilerplate,
    reorder,
    truncate,
    typos,
    unicode_variants,
    whitespace_case,
)

from posttrain.platform.dedup.venv_text import (
    SourceText,
    iter_code_chunks,
    iter_docstrings,
    iter_prose_files,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO_ROOT / "tests" / "data" / "near_dup_pairs.jsonl.gz"
SEED = 20261125
MIN_CHARS, MAX_CHARS = 400, 3000
PAIRS_PER_EDIT = 200
PAIRS_PER_NEGATIVE_KIND = 400
POOL_SIZES = {"docstring": 5000, "prose": 1500, "code": 4000}
DOMAIN_WEIGHTS = {"docstring": 0.45, "prose": 0.2, "code": 0.35}
MAX_SHARED_LINES = 0.5
MIN_DISTINCT_LINES = 0.9


@dataclass(frozen=True)
class Document:
    domain: str  # docstring, prose or code
    source: SourceText

    @property
    def text(self) -> str:
        return self.source.text


def _clip(text: str) -> str:
    """At most MAX_CHARS, cut at a line end when there is one."""
    if len(text) <= MAX_CHARS:
        return text
    cut = text.rfind("\n", MIN_CHARS, MAX_CHARS)
    return text[: cut if cut > 0 else MAX_CHARS]


def _prose_chunks(rng: random.Random) -> Iterator[SourceText]:
    from posttrain.platform.dedup.venv_text import chunk_lines

    for source in iter_prose_files():
        for piece in chunk_lines(source.text, rng, MIN_CHARS, MAX_CHARS):
            yield SourceText(source.path, piece)


def _pool(rng: random.Random) -> dict[str, list[Document]]:
    """Source documents per domain, each text at most once (vendored copies are common)."""
    streams = {
        "docstring": iter_docstrings(MIN_CHARS),
        "prose": _prose_chunks(rng),
        "code": iter_code_chunks(rng, MIN_CHARS, MAX_CHARS),
    }
    seen: set[str] = set()
    pool: dict[str, list[Document]] = {}
    for domain, stream in streams.items():
        documents: list[Document] = []
        for source in stream:
            text = _clip(source.text)
            key = " ".join(text.lower().split())
            if len(text) >= MIN_CHARS and key not in seen:
                seen.add(key)
                documents.append(Document(domain, SourceText(source.path, text)))
            if len(documents) >= POOL_SIZES[domain]:
                break
        pool[domain] = documents
    return pool


def _edits(domain: str) -> dict[str, Edit]:
    blocks = CODE_BOILERPLATE if domain == "code" else PROSE_BOILERPLATE
    return {
        "typos": typos,
        "reorder": reorder,
        "boilerplate": partial(boilerplate, pool=blocks),
        "truncate": truncate,
        "whitespace_case": whitespace_case,
        "unicode": unicode_variants,
    }


def _combined(domain: str, rng: random.Random) -> Edit:
    edits = _edits(domain)
    gentle: dict[str, Edit] = {
        **edits,
        "typos": partial(typos, rate=(0.005, 0.015)),
        "truncate": partial(truncate, keep=(0.9, 0.97)),
    }
    first, second = rng.sample(sorted(gentle), k=2)

    def both(text: str, rng: random.Random) -> str:
        return gentle[second](gentle[first](text, rng), rng)

    return both


def _pick_domain(rng: random.Random) -> str:
    return rng.choices(list(DOMAIN_WEIGHTS), weights=list(DOMAIN_WEIGHTS.values()))[0]


def _take(pool: dict[str, list[Document]], domain: str, rng: random.Random) -> Document:
    documents = pool[domain]
    return documents.pop(rng.randrange(len(documents)))


def _pair(
    kind: str, duplicate: bool, a: Document, text_a: str, b: Document, text_b: str
) -> dict[str, object]:
    return {
        "kind": kind,
        "duplicate": duplicate,
        "domain": a.domain,
        "text_a": text_a,
        "text_b": text_b,
        "source_a": a.source.path,
        "source_b": b.source.path,
    }


def _positives(pool: dict[str, list[Document]], rng: random.Random) -> list[dict[str, object]]:
    pairs = []
    for kind in [*_edits("prose"), "combined"]:
        made = 0
        while made < PAIRS_PER_EDIT:
            domain = _pick_domain(rng)
            document = _take(pool, domain, rng)
            edit = _combined(domain, rng) if kind == "combined" else _edits(domain)[kind]
            edited = edit(document.text, rng)
            if edited == document.text:
                continue  # the edit did not apply (e.g. nothing to reorder); draw again
            pairs.append(_pair(kind, True, document, document.text, document, edited))
            made += 1
    return pairs


def _line_key(line: str) -> str:
    """A line reduced to its words: comment markers, quotes and indentation do not count."""
    return " ".join(re.findall(r"\w+", line.lower()))


def _line_keys(text: str) -> list[str]:
    return [key for key in map(_line_key, text.splitlines()) if key]


def _shared_line_share(a: str, b: str) -> float:
    """Share of the shorter document's distinct lines that also occur in the other."""
    lines_a, lines_b = set(_line_keys(a)), set(_line_keys(b))
    if not lines_a or not lines_b:
        return 0.0
    return len(lines_a & lines_b) / min(len(lines_a), len(lines_b))


def _groups(pool: dict[str, list[Document]], key: str) -> list[list[Document]]:
    grouped: dict[tuple[str, str], list[Document]] = defaultdict(list)
    for domain, documents in pool.items():
        for document in documents:
            name = document.source.path if key == "file" else document.source.package
            grouped[domain, name].append(document)
    return [group for _, group in sorted(grouped.items()) if len(group) >= 2]


def _negative_pair(
    group: list[Document], key: str, rng: random.Random
) -> tuple[Document, Document] | None:
    a, b = rng.sample(group, 2)
    if key == "package" and a.source.path == b.source.path:
        return None
    if _shared_line_share(a.text, b.text) >= MAX_SHARED_LINES:
        return None
    return a, b


def _same_block(a: str, b: str, domain: str, rng: random.Random) -> tuple[str, str]:
    """Both documents with one boilerplate block, the same one at the same end."""
    pool = CODE_BOILERPLATE if domain == "code" else PROSE_BOILERPLATE
    budget = 0.2 * min(len(a.split()), len(b.split()))
    fitting = [block for block in pool if len(block.split()) <= budget] or [
        min(pool, key=lambda block: len(block.split()))
    ]
    block = rng.choice(fitting)
    if rng.random() < 0.5:
        return f"{block}\n\n{a}", f"{block}\n\n{b}"
    return f"{a.rstrip()}\n\n{block}\n", f"{b.rstrip()}\n\n{block}\n"


def _negatives(pool: dict[str, list[Document]], rng: random.Random) -> list[dict[str, object]]:
    """Hard negatives; the documents they use leave the pool."""
    pairs: list[dict[str, object]] = []
    plans = (("same_file", "file"), ("same_package", "package"), ("shared_boilerplate", "package"))
    for kind, key in plans:
        groups = _groups(pool, key)
        made = attempts = 0
        while made < PAIRS_PER_NEGATIVE_KIND and groups and attempts < 50 * PAIRS_PER_NEGATIVE_KIND:
            attempts += 1
            group = rng.choice(groups)
            found = _negative_pair(group, key, rng)
            if found is None:
                continue
            a, b = found
            for document in (a, b):
                group.remove(document)
                pool[document.domain].remove(document)
            groups = [g for g in groups if len(g) >= 2]
            text_a, text_b = a.text, b.text
            if kind == "shared_boilerplate":
                text_a, text_b = _same_block(text_a, text_b, a.domain, rng)
            pairs.append(_pair(kind, False, a, text_a, b, text_b))
            made += 1
    return pairs


def _overlapping_excerpts(text: str, rng: random.Random) -> tuple[str, str] | None:
    """Two excerpts of ``text`` at line boundaries sharing 25–40 % of it."""
    lines = text.splitlines(keepends=True)
    if len(lines) < 12 or len(text) < 2 * MIN_CHARS:
        return None
    keys = _line_keys(text)
    if len(set(keys)) < MIN_DISTINCT_LINES * len(keys):
        return None  # repetitive text: two excerpts would share far more than designed
    end_a = round(len(lines) * rng.uniform(0.55, 0.75))
    start_b = end_a - round(len(lines) * rng.uniform(0.25, 0.4))
    return "".join(lines[:end_a]), "".join(lines[start_b:])


def _partial_overlaps(
    pool: dict[str, list[Document]], rng: random.Random
) -> list[dict[str, object]]:
    pairs: list[dict[str, object]] = []
    attempts = 0
    while len(pairs) < PAIRS_PER_NEGATIVE_KIND and attempts < 50 * PAIRS_PER_NEGATIVE_KIND:
        attempts += 1
        domain = _pick_domain(rng)
        document = pool[domain][rng.randrange(len(pool[domain]))]
        excerpts = _overlapping_excerpts(document.text, rng)
        if excerpts is None:
            continue
        pool[domain].remove(document)
        pairs.append(_pair("partial_overlap", False, document, excerpts[0], document, excerpts[1]))
    return pairs


def build(rng: random.Random) -> list[dict[str, object]]:
    """All labelled pairs, numbered in a fixed order."""
    pool = _pool(rng)
    negatives = _negatives(pool, rng)  # first: they need documents that share a file
    negatives += _partial_overlaps(pool, rng)
    pairs = _positives(pool, rng) + negatives
    for number, pair in enumerate(pairs):
        pair["pair_id"] = f"pair-{number:05d}"
    return pairs


def write(pairs: list[dict[str, object]], out: Path) -> None:
    """JSON lines, gzip'ed with no timestamp so the bytes depend only on the content."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for pair in pairs:
            gz.write(json.dumps(pair, ensure_ascii=False, sort_keys=True).encode() + b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    pairs = build(random.Random(SEED))
    write(pairs, args.out)
    counts: dict[str, int] = defaultdict(int)
    for pair in pairs:
        counts[str(pair["kind"])] += 1
    summary = ", ".join(f"{kind} {count}" for kind, count in sorted(counts.items()))
    size_kb = args.out.stat().st_size / 1024
    print(f"wrote {len(pairs)} pairs to {args.out} ({size_kb:,.0f} KB): {summary}")


if __name__ == "__main__":
    main()
