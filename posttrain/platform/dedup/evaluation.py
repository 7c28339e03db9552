"""Precision and recall of a dedup run on labelled document pairs.

A labelled set (``tests/data/near_dup_pairs.jsonl.gz``, made by
``scripts/make_near_dup_set.py``) holds pairs ``text_a``/``text_b`` with a ``duplicate``
label and a ``kind`` (the edit that made the copy, or the kind of hard negative). All
documents are deduplicated together, as in production, and a pair counts as *found* when
both documents end in the same cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

PAIR_COLUMNS = ("pair_id", "kind", "duplicate", "text_a", "text_b")


@dataclass(frozen=True)
class PairScores:
    """Pair-level precision and recall, and the share of pairs found per kind."""

    true_positives: int
    false_positives: int
    false_negatives: int
    found_by_kind: dict[str, float] = field(default_factory=dict)

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0

    def describe(self) -> str:
        """One line, e.g. ``precision 0.998 recall 0.987 (tp 1386, fp 3, fn 14)``."""
        return (
            f"precision {self.precision:.3f} recall {self.recall:.3f} "
            f"(tp {self.true_positives}, fp {self.false_positives}, fn {self.false_negatives})"
        )


def load_labelled_pairs(path: str | Path) -> pa.Table:
    """The pairs of a labelled set (JSON lines, optionally gzip'ed)."""
    compression = "gzip" if str(path).endswith(".gz") else None
    with pa.input_stream(str(path), compression=compression) as stream:
        table = pj.read_json(stream)
    return table.select(list(PAIR_COLUMNS))


def pair_documents(pairs: pa.Table) -> pa.Table:
    """Every document of ``pairs`` as a ``record_id``/``text`` row (``<pair_id>/a`` or ``/b``)."""
    ids = pairs["pair_id"]
    return pa.table(
        {
            "record_id": pa.chunked_array(
                [pc.binary_join_element_wise(ids, suffix, "") for suffix in ("/a", "/b")]
            ),
            "text": pa.chunked_array(pairs["text_a"].chunks + pairs["text_b"].chunks),
        }
    )


def score_pairs(pairs: pa.Table, cluster_of: Mapping[str, str]) -> PairScores:
    """Score cluster assignments (``record_id`` → cluster id) against the labels."""
    tp = fp = fn = 0
    found: dict[str, list[bool]] = {}
    for pair_id, kind, duplicate in zip(
        pairs["pair_id"].to_pylist(),
        pairs["kind"].to_pylist(),
        pairs["duplicate"].to_pylist(),
        strict=True,
    ):
        same = cluster_of[f"{pair_id}/a"] == cluster_of[f"{pair_id}/b"]
        found.setdefault(kind, []).append(same)
        tp += same and duplicate
        fp += same and not duplicate
        fn += duplicate and not same
    by_kind = {kind: sum(hits) / len(hits) for kind, hits in sorted(found.items())}
    return PairScores(tp, fp, fn, by_kind)
