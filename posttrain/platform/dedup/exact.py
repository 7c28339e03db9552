"""Exact-duplicate keys: a hash of the normal form of each text."""

from __future__ import annotations

import pyarrow as pa
import xxhash

# 128 bits: the chance that two different texts of a 10^9-row corpus share a key is ~1e-21.
EXACT_HASH_ALGORITHM = "xxh3_128"


def exact_hashes(normalized: pa.Array) -> pa.Array:
    """The hex XXH3-128 digest of every normalized text's UTF-8 bytes.

    Null and empty texts get a null hash: nothing is compared, so two empty texts are
    not duplicates of each other (an empty assistant view is not a conversation's text).

    Example:
        >>> exact_hashes(pa.array(["abc", "", None])).to_pylist()[1:]
        [None, None]
    """
    digest = xxhash.xxh3_128_hexdigest
    return pa.array(
        [digest(text.encode()) if text else None for text in normalized.to_pylist()],
        type=pa.string(),
    )
