"""LSH banding, candidate pairs and their verification, vectorized with numpy.

A signature of ``bands × rows`` slots is cut into ``bands`` bands; two texts whose slots
agree on a whole band land in the same bucket and become a candidate pair. Buckets are
found by sorting each band's keys, never through a Python dict per document, so one band
of ten million signatures is one ``argsort``.

Within a bucket, members are ordered by node index (published records first, then new
records by ``record_id``) and each member is paired with the next ``window`` members.
For a bucket of at most ``window + 1`` members that is every pair; a larger bucket (a
template repeated thousands of times) yields ``window`` pairs per member instead of a
quadratic number, and still connects the whole bucket.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

BUCKET_WINDOW = 32
VERIFY_CHUNK_PAIRS = 65_536
_BAND_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


def band_keys(rows: np.ndarray, band: int, bands: int) -> np.ndarray:
    """One 64-bit key per signature for band ``band``: equal slots give equal keys.

    Keys are a polynomial hash of the band's slots; two different bands that share a key
    cost one needless verification, never a wrong answer.

    Example:
        >>> rows = np.array([[1, 2, 3, 4], [1, 2, 9, 9]], dtype=np.uint32)
        >>> first, second = band_keys(rows, 0, 2), band_keys(rows, 1, 2)
        >>> bool(first[0] == first[1]), bool(second[0] == second[1])
        (True, False)
    """
    width = rows.shape[1] // bands
    keys = np.zeros(len(rows), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for slot in range(band * width, (band + 1) * width):
            keys = keys * _BAND_MULTIPLIER + rows[:, slot].astype(np.uint64) + np.uint64(1)
    return keys


def _bucket_pairs(keys: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of indices with equal ``keys``, each member with its next ``window`` members."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    lefts, rights = [], []
    for distance in range(1, min(window, len(keys) - 1) + 1):
        same = sorted_keys[:-distance] == sorted_keys[distance:]
        if not same.any():
            break  # no bucket has more than `distance` members
        lefts.append(order[:-distance][same])
        rights.append(order[distance:][same])
    if not lefts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    return np.concatenate(lefts), np.concatenate(rights)


def candidate_pairs(
    rows: np.ndarray,
    bands: int,
    comparable: np.ndarray,
    *,
    window: int = BUCKET_WINDOW,
    on_band: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct pairs ``(left < right)`` of rows that share a band key.

    Args:
        rows: ``(n, num_perm)`` signatures.
        bands: LSH bands; each has ``num_perm / bands`` slots.
        comparable: ``(n,)`` bool; a pair is kept only if either row is comparable
            (new records are; published records are compared to new ones, not to
            each other).
        window: bucket neighbours each member is paired with.
        on_band: called with the number of rows after each band (progress).
    """
    scale = np.uint64(max(len(rows), 1))
    codes = np.zeros(0, dtype=np.uint64)  # left * n + right, sorted and distinct
    for band in range(bands):
        left, right = _bucket_pairs(band_keys(rows, band, bands), window)
        low, high = np.minimum(left, right), np.maximum(left, right)
        wanted = comparable[low] | comparable[high]
        codes = np.union1d(codes, low[wanted].astype(np.uint64) * scale + high[wanted])
        if on_band is not None:
            on_band(len(rows))
    return (codes // scale).astype(np.int64), (codes % scale).astype(np.int64)


def estimated_similarity(rows: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of each pair: the share of equal signature slots."""
    result = np.empty(len(left), dtype=np.float64)
    for start in range(0, len(left), VERIFY_CHUNK_PAIRS):
        stop = start + VERIFY_CHUNK_PAIRS
        equal = rows[left[start:stop]] == rows[right[start:stop]]
        result[start:stop] = equal.mean(axis=1)
    return result


def verify(
    rows: np.ndarray, left: np.ndarray, right: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate pairs whose estimated similarity is at least ``threshold``."""
    similarity = estimated_similarity(rows, left, right)
    # Slot agreement is a multiple of 1/num_perm; compare in slots so 0.7 × 128 = 89.6
    # means "at least 90 equal slots" without float rounding surprises.
    num_perm = rows.shape[1]
    needed = np.ceil(threshold * num_perm - 1e-9)
    kept = np.rint(similarity * num_perm) >= needed
    return left[kept], right[kept], similarity[kept]
