"""Precision and recall on the labelled near-duplicate set, at the default settings."""

from __future__ import annotations

import pyarrow as pa

from posttrain.platform.dedup import DedupConfig, deduplicate
from posttrain.platform.dedup.evaluation import PairScores, pair_documents, score_pairs
from posttrain.platform.execution import InProcessExecutor

DUPLICATE_KINDS = {
    "typos",
    "reorder",
    "boilerplate",
    "truncate",
    "whitespace_case",
    "unicode",
    "combined",
}
NEGATIVE_KINDS = {"same_file", "same_package", "shared_boilerplate", "partial_overlap"}


def _scores(pairs: pa.Table, config: DedupConfig) -> PairScores:
    result = deduplicate(pair_documents(pairs), config, InProcessExecutor(), text_column="text")
    clusters = dict(
        zip(
            result.assignments["record_id"].to_pylist(),
            result.assignments["cluster_id"].to_pylist(),
            strict=True,
        )
    )
    return score_pairs(pairs, clusters)


def test_labelled_set_has_every_edit_and_negative_kind(labelled_pairs: pa.Table) -> None:
    kinds = dict(
        zip(
            labelled_pairs["kind"].to_pylist(), labelled_pairs["duplicate"].to_pylist(), strict=True
        )
    )
    assert {kind for kind, duplicate in kinds.items() if duplicate} == DUPLICATE_KINDS
    assert {kind for kind, duplicate in kinds.items() if not duplicate} == NEGATIVE_KINDS
    assert labelled_pairs.num_rows >= 2000


def test_default_settings_reach_precision_and_recall_of_95_percent(
    labelled_pairs: pa.Table,
) -> None:
    scores = _scores(labelled_pairs, DedupConfig())
    assert scores.precision >= 0.95, scores.describe()
    assert scores.recall >= 0.95, scores.describe()


def test_every_kind_of_edit_is_mostly_found_and_no_kind_of_negative_is(
    labelled_pairs: pa.Table,
) -> None:
    found = _scores(labelled_pairs, DedupConfig()).found_by_kind
    assert all(found[kind] >= 0.8 for kind in DUPLICATE_KINDS), found
    assert all(found[kind] <= 0.02 for kind in NEGATIVE_KINDS), found


def test_a_strict_threshold_trades_recall_for_precision(labelled_pairs: pa.Table) -> None:
    default, strict = (
        _scores(labelled_pairs, DedupConfig()),
        _scores(labelled_pairs, DedupConfig(threshold=0.95)),
    )
    assert strict.recall < default.recall
    assert strict.false_positives <= default.false_positives
