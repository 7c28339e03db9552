"""What dedup decided for every new record: keep or reject, whom it matched, and why."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.dedup.clusters import cluster_sizes, strongest_links
from posttrain.platform.dedup.config import DedupConfig
from posttrain.platform.dedup.graph import DuplicateGraph, Nodes
from posttrain.platform.dedup.lsh import estimated_similarity
from posttrain.platform.schemas import RejectionReason

ASSIGNMENTS_SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("cluster_id", pa.string(), nullable=False),
        pa.field("cluster_size", pa.int64(), nullable=False),
        pa.field("keep", pa.bool_(), nullable=False),
        pa.field("reason", pa.string()),
        pa.field("matched_id", pa.string()),
        pa.field("similarity", pa.float64()),
        pa.field("detail", pa.string()),
    ]
)


@dataclass(frozen=True)
class Decisions:
    """Per new record (aligned with ``nodes`` from ``num_published`` on)."""

    keep: np.ndarray
    keeper: np.ndarray  # node id of the cluster's keeper (itself when kept)
    exact: np.ndarray  # rejected as an exact duplicate (same normal form as the keeper)
    similarity: np.ndarray  # estimated Jaccard to the keeper; NaN when unknown
    cluster_size: np.ndarray
    dropped_whole: np.ndarray  # the keeper itself, rejected with its cluster


def decide(nodes: Nodes, graph: DuplicateGraph, config: DedupConfig) -> Decisions:
    """Keep each cluster's root; reject the rest (or, on request, whole new clusters)."""
    new = np.arange(nodes.num_published, len(nodes))
    keeper = graph.roots[new]
    size = cluster_sizes(graph.roots)[new]
    is_keeper = keeper == new
    dropped_whole = (
        is_keeper & (size > 1) if config.drop_whole_cluster else np.zeros(len(new), dtype=bool)
    )
    exact = (nodes.exact_codes[new] >= 0) & (nodes.exact_codes[new] == nodes.exact_codes[keeper])
    similarity = np.full(len(new), np.nan)
    similarity[exact & ~is_keeper] = 1.0
    comparable = ~is_keeper & ~exact & nodes.has_signature[new] & nodes.has_signature[keeper]
    similarity[comparable] = estimated_similarity(nodes.rows, new[comparable], keeper[comparable])
    if config.drop_whole_cluster:
        # A keeper dropped with its cluster is an exact duplicate if all the others are.
        all_exact = np.ones(len(nodes), dtype=bool)
        np.logical_and.at(all_exact, keeper[~is_keeper], exact[~is_keeper])
        exact = np.where(dropped_whole, all_exact[new], exact)
    return Decisions(
        keep=is_keeper & ~dropped_whole,
        keeper=keeper,
        exact=exact,
        similarity=similarity,
        cluster_size=size,
        dropped_whole=dropped_whole,
    )


def _detail(
    index: int,
    nodes: Nodes,
    decisions: Decisions,
    links: tuple[np.ndarray, np.ndarray],
    config: DedupConfig,
) -> str:
    record_ids = nodes.record_ids
    keeper = int(decisions.keeper[index])
    size = int(decisions.cluster_size[index])
    if decisions.dropped_whole[index]:
        return f"would-be keeper of a cluster of {size}, dropped whole (drop_whole_cluster)"
    if keeper < nodes.num_published:
        target = f"{record_ids[keeper].as_py()} (published)"
    elif config.drop_whole_cluster:
        target = f"would-be keeper {record_ids[keeper].as_py()} (cluster dropped whole)"
    else:
        target = str(record_ids[keeper].as_py())
    if decisions.exact[index]:
        return (
            f"exact duplicate of {target}: same text after normalization (Unicode NFKC, "
            f"case, whitespace); cluster of {size}"
        )
    similarity = decisions.similarity[index]
    estimate = "unknown (no stored signature)" if np.isnan(similarity) else f"{similarity:.3f}"
    text = (
        f"near duplicate of {target}: estimated Jaccard {estimate} of word "
        f"{config.ngram}-grams (threshold {config.threshold}); cluster of {size}"
    )
    neighbour, best = links
    node = nodes.num_published + index
    if (np.isnan(similarity) or similarity < config.threshold) and neighbour[node] >= 0:
        text += f"; linked through {record_ids[int(neighbour[node])].as_py()} ({best[node]:.3f})"
    return text


def assignments_table(
    nodes: Nodes, graph: DuplicateGraph, decisions: Decisions, config: DedupConfig
) -> pa.Table:
    """One row per new record, in ``record_id`` order (see :data:`ASSIGNMENTS_SCHEMA`)."""
    new_ids = nodes.record_ids[nodes.num_published :]
    keeper_ids = nodes.record_ids.take(pa.array(decisions.keeper))
    links = strongest_links(len(nodes), graph.near_left, graph.near_right, graph.near_similarity)
    rejected = ~decisions.keep
    reasons = pc.if_else(
        pa.array(decisions.exact), RejectionReason.EXACT_DUP.value, RejectionReason.NEAR_DUP.value
    )
    reasons = pc.if_else(pa.array(rejected), reasons, pa.scalar(None, pa.string()))
    details = pc.replace_with_mask(
        pa.nulls(len(new_ids), pa.string()),
        pa.array(rejected),
        pa.array(
            [_detail(int(i), nodes, decisions, links, config) for i in np.flatnonzero(rejected)],
            pa.string(),
        ),
    )
    is_self = decisions.keeper == np.arange(nodes.num_published, len(nodes))
    matched = pc.if_else(pa.array(is_self), pa.scalar(None, pa.string()), keeper_ids)
    similarity = pa.array(decisions.similarity, pa.float64(), mask=np.isnan(decisions.similarity))
    return pa.table(
        [
            new_ids,
            keeper_ids,
            pa.array(decisions.cluster_size, pa.int64()),
            pa.array(decisions.keep),
            reasons,
            matched,
            similarity,
            details,
        ],
        schema=ASSIGNMENTS_SCHEMA,
    )
