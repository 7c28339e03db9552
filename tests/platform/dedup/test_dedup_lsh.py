"""LSH banding, candidate pairs and verification; union-find clusters."""

from __future__ import annotations

import numpy as np

from posttrain.platform.dedup.clusters import cluster_roots, cluster_sizes, strongest_links
from posttrain.platform.dedup.lsh import band_keys, candidate_pairs, verify


def _rows(*signatures: list[int]) -> np.ndarray:
    return np.array(signatures, dtype=np.uint32)


def test_band_keys_are_equal_exactly_when_the_band_slots_are() -> None:
    rows = _rows([1, 2, 3, 4], [1, 2, 3, 5], [2, 1, 3, 4])
    first, second = band_keys(rows, 0, 2), band_keys(rows, 1, 2)
    assert first[0] == first[1] != first[2]  # slot order matters
    assert second[0] != second[1] and second[0] == second[2]


def test_candidates_are_pairs_sharing_any_band() -> None:
    rows = _rows([1, 1, 7, 7], [1, 1, 8, 8], [9, 9, 7, 7], [5, 5, 5, 5])
    left, right = candidate_pairs(rows, bands=2, comparable=np.ones(4, dtype=bool))
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 1), (0, 2)]


def test_pairs_of_two_incomparable_rows_are_skipped() -> None:
    rows = _rows([1, 1], [1, 1], [1, 1])
    left, right = candidate_pairs(rows, bands=1, comparable=np.array([False, False, True]))
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 2), (1, 2)]


def test_a_huge_bucket_gives_a_bounded_number_of_pairs_and_stays_connected() -> None:
    rows = np.ones((500, 4), dtype=np.uint32)
    left, right = candidate_pairs(rows, bands=1, comparable=np.ones(500, dtype=bool), window=8)
    assert len(left) <= 8 * 500
    assert set(cluster_roots(500, left, right).tolist()) == {0}


def test_verification_keeps_pairs_at_or_above_the_threshold_in_whole_slots() -> None:
    rows = _rows(
        [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
        [1, 2, 3, 4, 5, 6, 7, 0, 0, 0],
        [1, 2, 3, 4, 5, 6, 0, 0, 0, 0],
    )
    left, right, similarity = verify(rows, np.array([0, 0]), np.array([1, 2]), threshold=0.7)
    assert left.tolist() == [0] and right.tolist() == [1] and similarity.tolist() == [0.7]


def test_clusters_are_rooted_at_their_smallest_member() -> None:
    roots = cluster_roots(8, np.array([6, 3, 5, 2, 7]), np.array([3, 5, 1, 1, 4]))
    assert roots.tolist() == [0, 1, 1, 1, 4, 1, 1, 4]
    assert cluster_sizes(roots).tolist() == [1, 5, 5, 5, 2, 5, 5, 2]


def test_long_chains_collapse_into_one_cluster() -> None:
    order = np.random.default_rng(0).permutation(999)
    roots = cluster_roots(1000, order, order + 1)
    assert set(roots.tolist()) == {0}


def test_strongest_link_is_the_most_similar_neighbour() -> None:
    neighbour, best = strongest_links(
        4, np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([0.8, 0.9, 0.95])
    )
    assert neighbour.tolist() == [2, 2, 1, -1]
    assert best[:3].tolist() == [0.9, 0.95, 0.95] and np.isnan(best[3])
