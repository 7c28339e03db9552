"""Arrow → numpy for the dedup hot path, without ``pa.Array.to_numpy``.

``to_numpy`` goes through pyarrow's pandas conversion, which imports pandas the first
time it runs in a process (about 0.5 s, a quarter of a whole ``posttrain dedup`` run on
70 MB) although no pandas object is made. The arrays dedup converts are null-free
integers and booleans, whose buffers numpy reads directly.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def to_numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of a null-free integer or boolean array (booleans as ``bool``).

    Raises:
        ValueError: the array has nulls or another type.

    Example:
        >>> to_numpy(pa.array([True, False, True]).slice(1)).tolist()
        [False, True]
        >>> to_numpy(pa.chunked_array([[1, 2], [3]], pa.int32())).tolist()
        [1, 2, 3]
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.null_count:
        raise ValueError(f"expected no nulls, found {array.null_count}")
    data = array.buffers()[1]
    if pa.types.is_boolean(array.type):
        if data is None:
            return np.zeros(0, dtype=bool)
        bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
        return bits[array.offset : array.offset + len(array)].view(bool)
    if not pa.types.is_integer(array.type):
        raise ValueError(f"expected integers or booleans, found {array.type}")
    kind = "i" if pa.types.is_signed_integer(array.type) else "u"
    dtype = np.dtype(f"<{kind}{array.type.bit_width // 8}")
    if data is None:
        return np.zeros(0, dtype=dtype)
    values: np.ndarray = np.frombuffer(data, dtype=dtype)
    return values[array.offset : array.offset + len(array)]
