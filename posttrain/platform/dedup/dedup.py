"""Exact and near-duplicate detection of a table of records: :func:`deduplicate`.

1. **Fingerprints** (parallel, per Arrow batch, through the :class:`Executor`): each
   row's text is normalized, hashed for exact matching and MinHash-signed.
2. **Graph** (driver, vectorized): exact groups, LSH candidate pairs, verification of
   every candidate against the threshold, union-find clusters
   (:mod:`~posttrain.platform.dedup.graph`).
3. **Decisions**: each cluster keeps one record by the keeper rule (a published record if
   there is one, else the smallest ``record_id``), the others become rejections.

The result depends only on the records and the config: rows are processed in
``record_id`` order after fingerprinting, so batch size, batch order, executor and number
of workers do not change a byte of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.dedup._numpy import to_numpy
from posttrain.platform.dedup.config import DedupConfig
from posttrain.platform.dedup.fingerprints import FingerprintStep, fingerprint_schema
from posttrain.platform.dedup.graph import DuplicateGraph, Nodes, build_graph, exact_codes
from posttrain.platform.dedup.minhash import encode_signatures
from posttrain.platform.dedup.outcome import Decisions, assignments_table, decide
from posttrain.platform.dedup.published import PublishedIndex
from posttrain.platform.errors import InputFormatError, RecordError
from posttrain.platform.execution import DEFAULT_BATCH_ROWS, Executor
from posttrain.platform.steps import PROVENANCE_COLUMNS, rejection_rows, run_stages


@dataclass(frozen=True)
class DedupStats:
    """Counts for asset metadata and the CLI summary."""

    rows: int
    without_text: int
    kept: int
    exact_duplicates: int
    near_duplicates: int
    clusters: int
    matched_published: int
    candidate_pairs: int
    verified_pairs: int

    def as_metadata(self) -> dict[str, int | float]:
        """The counts plus ``dedup_ratio`` (share of rows rejected)."""
        rejected = self.exact_duplicates + self.near_duplicates
        return {**self.__dict__, "dedup_ratio": rejected / self.rows if self.rows else 0.0}


@dataclass(frozen=True)
class DedupResult:
    """What :func:`deduplicate` decided.

    Attributes:
        assignments: one row per candidate, sorted by ``record_id``: ``cluster_id`` (the
            keeper's ``record_id``), ``cluster_size``, ``keep``, ``reason``,
            ``matched_id`` (the keeper, for every other member), ``similarity``
            (estimated Jaccard to the keeper, 1.0 for exact duplicates), ``detail``.
        fingerprints: ``record_id``, ``exact_hash``, ``minhash`` of every candidate,
            sorted by ``record_id``: the values ``silver.conversations`` stores.
        rejected: the rejected candidates in the ``silver.rejections`` schema, including
            any that made fingerprinting raise (reason ``stage_error``; they are in no
            other table).
        stats: counts.
    """

    assignments: pa.Table
    fingerprints: pa.Table
    rejected: pa.Table
    stats: DedupStats

    def kept_fingerprints(self) -> pa.Table:
        """``record_id``, ``exact_hash``, ``minhash`` of the kept candidates."""
        return self.fingerprints.filter(self.assignments["keep"])

    def kept(self, candidates: pa.Table) -> pa.Table:
        """The kept rows of ``candidates`` with ``exact_hash`` and ``minhash`` set,
        sorted by ``record_id``."""
        if candidates.num_rows != self.assignments.num_rows:  # some could not be fingerprinted
            judged = pc.is_in(candidates["record_id"], value_set=self.fingerprints["record_id"])
            candidates = candidates.filter(judged)
        ordered = candidates.take(pc.sort_indices(candidates, [("record_id", "ascending")]))
        kept = ordered.filter(self.assignments["keep"])
        fingerprints = self.kept_fingerprints()
        for name in ("exact_hash", "minhash"):
            if name in kept.column_names:
                kept = kept.drop_columns([name])
            kept = kept.append_column(name, fingerprints[name])
        return kept


def _check_candidates(candidates: pa.Table, text_column: str, name: str) -> None:
    for column in ("record_id", text_column):
        if column not in candidates.column_names:
            raise InputFormatError(
                name, f"a {column!r} column", found=f"columns {candidates.column_names}"
            )
    ids = candidates["record_id"].cast(pa.string())
    if ids.null_count:
        raise InputFormatError(
            name, "a record_id on every row", found=f"{ids.null_count} null record_id values"
        )
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = (
            pa.table({"record_id": ids}).group_by("record_id").aggregate([("record_id", "count")])
        )
        repeated = counts.filter(pc.greater(counts["record_id_count"], 1))
        example = repeated["record_id"][0].as_py()
        raise InputFormatError(
            name,
            "unique record_id values",
            found=f"{repeated.num_rows} repeated, e.g. {example!r} "
            f"{repeated['record_id_count'][0]} times",
        )


def _fingerprint(
    candidates: pa.Table, text_column: str, config: DedupConfig, executor: Executor, batch_rows: int
) -> tuple[pa.Table, pa.Table]:
    """Fingerprints of every candidate, in ``record_id`` order, and the rejections of the
    candidates that made fingerprinting raise."""
    step = FingerprintStep(config, text_column)
    # Provenance travels along so that a rejection can name the record's file and line.
    columns = ["record_id", text_column]
    columns += [c for c in PROVENANCE_COLUMNS if c in candidates.column_names and c not in columns]
    result = run_stages(
        step,
        candidates.select(columns),
        executor,
        label="dedup: fingerprints",
        batch_rows=batch_rows,
        kept_schema=fingerprint_schema(config.num_perm),
    )
    table = result.kept.cast(fingerprint_schema(config.num_perm))
    table = table.take(pc.sort_indices(table, [("record_id", "ascending")])).combine_chunks()
    return table, result.rejected


def _signature_rows(
    column: pa.ChunkedArray | pa.Array, num_perm: int
) -> tuple[np.ndarray, np.ndarray]:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    valid = to_numpy(array.is_valid())
    if len(array) == 0:
        return np.zeros((0, num_perm), dtype=np.uint32), valid
    data = np.frombuffer(array.buffers()[1], dtype="<u4")
    start = array.offset * num_perm
    rows = data[start : start + len(array) * num_perm].reshape(-1, num_perm).astype(np.uint32)
    return rows, valid


def _nodes(fingerprints: pa.Table, published: PublishedIndex, config: DedupConfig) -> Nodes:
    rows, valid = _signature_rows(fingerprints["signature"], config.num_perm)
    hashes = pa.concat_arrays([published.exact_hashes, fingerprints["exact_hash"].combine_chunks()])
    return Nodes(
        record_ids=pa.concat_arrays(
            [published.record_ids, fingerprints["record_id"].combine_chunks()]
        ),
        exact_codes=exact_codes(hashes),
        rows=np.concatenate([published.rows, rows]),
        has_signature=np.concatenate([published.has_signature, valid]),
        num_published=len(published),
    )


def _rejections(
    candidates: pa.Table,
    assignments: pa.Table,
    decisions: Decisions,
    nodes: Nodes,
    config: DedupConfig,
) -> pa.Table:
    """``silver.rejections`` rows of the rejected candidates, in ``record_id`` order."""
    rejected_rows = np.flatnonzero(~decisions.keep)
    rejected = assignments.take(pa.array(rejected_rows))
    provenance = [
        c for c in PROVENANCE_COLUMNS if c != "record_id" and c in candidates.column_names
    ]
    context = candidates.select(["record_id", *provenance])
    context = context.take(pc.sort_indices(context, [("record_id", "ascending")]))
    errors = [
        (row, RecordError(reason, detail))
        for row, reason, detail in zip(
            context.take(pa.array(rejected_rows)).to_pylist(),
            rejected["reason"].to_pylist(),
            rejected["detail"].to_pylist(),
            strict=True,
        )
    ]
    kept_record_id = rejected["matched_id"].to_pylist()
    if config.drop_whole_cluster:
        # Nothing of a dropped cluster (no published member) is kept: no kept_record_id.
        new_keeper = decisions.keeper[rejected_rows] >= nodes.num_published
        kept_record_id = [
            None if drop else kept for kept, drop in zip(kept_record_id, new_keeper, strict=True)
        ]
    return rejection_rows(
        errors, kept_record_id=kept_record_id, similarity=rejected["similarity"].to_pylist()
    )


def deduplicate(
    candidates: pa.Table,
    config: DedupConfig,
    executor: Executor,
    published: PublishedIndex | None = None,
    *,
    text_column: str = "messages",
    batch_rows: int = DEFAULT_BATCH_ROWS,
    name: str = "candidates",
) -> DedupResult:
    """Find exact and near duplicates among ``candidates`` and against ``published``.

    Args:
        candidates: one row per record, with a unique ``record_id`` and the text column;
            ``source`` and ``batch_id`` are copied to rejections when present.
        config: thresholds, shingles, signature size and the conversation text view.
        executor: runs the fingerprint step over batches (in-process or on Ray).
        published: what is already published; its records are never rejected.
        text_column: ``messages`` (conversations, read through ``config.text_view``) or
            any string column.
        batch_rows: rows per batch sent to the executor (no effect on the result).
        name: how errors name the input.

    Returns:
        The :class:`DedupResult`.

    Raises:
        InputFormatError: a column is missing or ``record_id`` is not unique.

    Example:
        >>> from posttrain.platform.execution import InProcessExecutor
        >>> texts = pa.table({"record_id": ["a", "b"], "text": ["Hello  World", "hello world"]})
        >>> result = deduplicate(texts, DedupConfig(), InProcessExecutor(), text_column="text")
        >>> result.assignments.select(["record_id", "keep", "matched_id"]).to_pylist()[1]
        {'record_id': 'b', 'keep': False, 'matched_id': 'a'}
    """
    _check_candidates(candidates, text_column, name)
    index = published if published is not None else PublishedIndex.empty(config)
    fingerprints, failed = _fingerprint(candidates, text_column, config, executor, batch_rows)
    if failed.num_rows:
        judged = pc.invert(pc.is_in(candidates["record_id"], value_set=failed["record_id"]))
        candidates = candidates.filter(judged)
    nodes = _nodes(fingerprints, index, config)
    graph = build_graph(nodes, config, executor.progress)
    decisions = decide(nodes, graph, config)
    assignments = assignments_table(nodes, graph, decisions, config)
    rejected = _rejections(candidates, assignments, decisions, nodes, config)
    if failed.num_rows:
        rejected = pa.concat_tables([rejected, failed])
        rejected = rejected.take(pc.sort_indices(rejected, [("record_id", "ascending")]))
    stored = encode_signatures(*_signature_rows(fingerprints["signature"], config.num_perm), config)
    return DedupResult(
        assignments=assignments,
        fingerprints=pa.table(
            {
                "record_id": fingerprints["record_id"],
                "exact_hash": fingerprints["exact_hash"],
                "minhash": stored,
            }
        ),
        rejected=rejected,
        stats=_stats(nodes, graph, decisions, fingerprints),
    )


def _stats(
    nodes: Nodes, graph: DuplicateGraph, decisions: Decisions, fingerprints: pa.Table
) -> DedupStats:
    rejected = ~decisions.keep
    new_roots = decisions.keeper[decisions.cluster_size > 1]
    return DedupStats(
        rows=fingerprints.num_rows,
        without_text=int(fingerprints["exact_hash"].null_count),
        kept=int(decisions.keep.sum()),
        exact_duplicates=int((rejected & decisions.exact).sum()),
        near_duplicates=int((rejected & ~decisions.exact).sum()),
        clusters=len(np.unique(new_roots)),
        matched_published=int((rejected & (decisions.keeper < nodes.num_published)).sum()),
        candidate_pairs=graph.candidate_pairs,
        verified_pairs=len(graph.near_left),
    )
