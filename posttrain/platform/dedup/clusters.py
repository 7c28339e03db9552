"""Duplicate clusters by union-find, and the keeper of each cluster.

Nodes are numbered so that the **keeper rule is "the smallest node"**: published records
come first (by ``record_id``), then new records (by ``record_id``). A cluster containing a
published record is therefore kept by a published record, and a cluster of new records by
the one with the lexicographically smallest ``record_id``. Record ids are content hashes,
so the keeper never depends on arrival order, batch layout or worker count.

The union-find is vectorized: every round hooks the larger root of each unmerged edge
under the smaller one (``np.minimum.at``) and then compresses paths by pointer jumping,
until no edge joins two roots. Each component ends with its smallest node as root.
"""

from __future__ import annotations

import numpy as np


def _compress(parent: np.ndarray) -> np.ndarray:
    while True:
        grand = parent[parent]
        if np.array_equal(grand, parent):
            return parent
        parent = grand


def cluster_roots(num_nodes: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The root (smallest member) of every node's connected component.

    Example:
        >>> cluster_roots(5, np.array([4, 1]), np.array([2, 2])).tolist()
        [0, 1, 1, 3, 1]
    """
    parent = np.arange(num_nodes, dtype=np.int64)
    while len(left):
        root_left, root_right = parent[left], parent[right]
        apart = root_left != root_right
        if not apart.any():
            break
        low = np.minimum(root_left[apart], root_right[apart])
        high = np.maximum(root_left[apart], root_right[apart])
        np.minimum.at(parent, high, low)
        parent = _compress(parent)
        left, right = left[apart], right[apart]
    return parent


def cluster_sizes(roots: np.ndarray) -> np.ndarray:
    """Size of each node's cluster."""
    sizes: np.ndarray = np.bincount(roots, minlength=len(roots))[roots]
    return sizes


def strongest_links(
    num_nodes: int, left: np.ndarray, right: np.ndarray, similarity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For every node, its most similar verified neighbour and that similarity.

    Ties go to the smaller neighbour; nodes without a verified edge get ``-1`` and NaN.
    """
    nodes = np.concatenate([left, right])
    others = np.concatenate([right, left])
    scores = np.concatenate([similarity, similarity])
    order = np.lexsort((others, -scores, nodes))
    nodes, others, scores = nodes[order], others[order], scores[order]
    first = np.ones(len(nodes), dtype=bool)
    first[1:] = nodes[1:] != nodes[:-1]
    neighbour = np.full(num_nodes, -1, dtype=np.int64)
    best = np.full(num_nodes, np.nan)
    neighbour[nodes[first]] = others[first]
    best[nodes[first]] = scores[first]
    return neighbour, best
