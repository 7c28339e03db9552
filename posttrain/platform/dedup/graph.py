"""The duplicate graph: published and new records as nodes, exact and near matches as edges.

Node order implements the keeper rule (see :mod:`.clusters`): published records first,
then new records, each part sorted by ``record_id``. Exact edges join every record to the
smallest record with the same normal form; near edges are LSH candidate pairs whose
estimated Jaccard similarity passed the threshold. Only one record per exact group (its
smallest member with a signature) takes part in LSH: identical texts have identical
signatures, so banding them again would only repeat work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.dedup._numpy import to_numpy
from posttrain.platform.dedup.clusters import cluster_roots
from posttrain.platform.dedup.config import DedupConfig
from posttrain.platform.dedup.lsh import candidate_pairs, verify
from posttrain.platform.progress import NullProgress, ProgressSink, ProgressTracker


@dataclass(frozen=True)
class Nodes:
    """Every record dedup looks at, in keeper order; the first ``num_published`` are published."""

    record_ids: pa.Array
    exact_codes: np.ndarray  # (n,) int64: equal codes = equal normal form; -1 = no text
    rows: np.ndarray  # (n, num_perm) uint32 signatures
    has_signature: np.ndarray  # (n,) bool
    num_published: int

    def __len__(self) -> int:
        return len(self.record_ids)


@dataclass(frozen=True)
class DuplicateGraph:
    """Clusters of :class:`Nodes` and the evidence that formed them."""

    roots: np.ndarray  # (n,) the keeper node of each node's cluster
    near_left: np.ndarray
    near_right: np.ndarray
    near_similarity: np.ndarray
    candidate_pairs: int


def exact_codes(hashes: pa.Array) -> np.ndarray:
    """Integer codes of exact hashes: equal hashes get equal codes, a null hash ``-1``."""
    if len(hashes) == 0:
        return np.zeros(0, dtype=np.int64)
    encoded = pc.fill_null(pc.dictionary_encode(hashes).indices, -1)
    codes: np.ndarray = to_numpy(encoded).astype(np.int64)
    return codes


def _group_first(codes: np.ndarray, members: np.ndarray) -> np.ndarray:
    """For each member (ascending node ids), the first member with the same code."""
    order = np.lexsort((members, codes[members]))
    sorted_members = members[order]
    sorted_codes = codes[sorted_members]
    starts = np.ones(len(sorted_members), dtype=bool)
    starts[1:] = sorted_codes[1:] != sorted_codes[:-1]
    first_of_sorted = sorted_members[
        np.maximum.accumulate(np.where(starts, np.arange(len(starts)), 0))
    ]
    first = np.empty_like(members)
    first[order] = first_of_sorted
    return first


def exact_edges(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Edges from every record with text to the smallest record with the same normal form."""
    members = np.flatnonzero(codes >= 0)
    first = _group_first(codes, members)
    joined = first != members
    return first[joined], members[joined]


def near_representatives(nodes: Nodes) -> np.ndarray:
    """Node ids that take part in LSH: per exact group, the smallest with a signature."""
    signed = np.flatnonzero(nodes.has_signature)
    # Records without an exact hash but with a signature stand alone: give each its own code.
    codes = np.where(nodes.exact_codes >= 0, nodes.exact_codes, -2 - np.arange(len(nodes)))
    first = _group_first(codes, signed)
    representatives: np.ndarray = signed[first == signed]
    return representatives


def build_graph(
    nodes: Nodes, config: DedupConfig, progress: ProgressSink | None = None
) -> DuplicateGraph:
    """Cluster the nodes: exact edges, then LSH candidates verified against the threshold.

    Banding reports its progress to ``progress`` as signature rows × bands.
    """
    exact_left, exact_right = exact_edges(nodes.exact_codes)
    representatives = near_representatives(nodes)
    rows = nodes.rows[representatives]
    is_new = representatives >= nodes.num_published
    banding = ProgressTracker(
        "dedup: LSH bands", len(rows) * config.bands, progress or NullProgress()
    )
    left, right = candidate_pairs(rows, config.bands, is_new, on_band=banding.advance)
    banding.finish()
    kept_left, kept_right, similarity = verify(rows, left, right, config.threshold)
    near_left, near_right = representatives[kept_left], representatives[kept_right]
    roots = cluster_roots(
        len(nodes),
        np.concatenate([exact_left, near_left]),
        np.concatenate([exact_right, near_right]),
    )
    return DuplicateGraph(roots, near_left, near_right, similarity, candidate_pairs=len(left))
