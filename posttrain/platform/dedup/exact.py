"""Exact-duplicate keys: a hash of the normal form of each text."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pyarrow as pa
import xxhash

from posttrain.platform.dedup._numpy import to_numpy

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
    # Hashed straight from the Arrow buffer: making Python strings of the texts (and UTF-8
    # bytes again) costs a hundred times the hashing.
    texts = normalized.cast(pa.string())
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32)[
        texts.offset : texts.offset + len(texts) + 1
    ].tolist()
    data = texts.buffers()[2]
    view = memoryview(data if data is not None else b"")
    digest = xxhash.xxh3_128_hexdigest
    hashes = [
        digest(view[start:stop]) if stop > start else None for start, stop in pairwise(offsets)
    ]
    if texts.null_count:
        valid = to_numpy(texts.is_valid()).tolist()
        hashes = [value if keep else None for value, keep in zip(hashes, valid, strict=True)]
    return pa.array(hashes, type=pa.string())
