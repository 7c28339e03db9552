"""Arrow → numpy for dedup's hot path, without pyarrow's pandas-importing ``to_numpy``."""

from __future__ import annotations

import pyarrow as pa
import pytest

from posttrain.platform.dedup._numpy import to_numpy


def test_booleans_of_a_slice_are_its_own() -> None:
    values = pa.array([True, False, True, True, False, False, True, False, True])
    assert to_numpy(values.slice(3, 5)).tolist() == [True, False, False, True, False]
    assert to_numpy(values.slice(3, 5)).dtype == bool


@pytest.mark.parametrize("kind", [pa.int8(), pa.int32(), pa.int64(), pa.uint16(), pa.uint64()])
def test_integers_keep_their_values_and_width(kind: pa.DataType) -> None:
    values = pa.chunked_array([[1, 2], [3, 4, 5]], kind)
    result = to_numpy(values)
    assert result.tolist() == [1, 2, 3, 4, 5]
    assert result.dtype.itemsize * 8 == kind.bit_width
    assert to_numpy(values.combine_chunks().slice(2)).tolist() == [3, 4, 5]


def test_empty_arrays_give_empty_results() -> None:
    assert to_numpy(pa.array([], pa.bool_())).tolist() == []
    assert to_numpy(pa.array([], pa.int32())).tolist() == []


def test_nulls_and_other_types_are_refused() -> None:
    with pytest.raises(ValueError, match="no nulls"):
        to_numpy(pa.array([1, None]))
    with pytest.raises(ValueError, match="integers or booleans"):
        to_numpy(pa.array([1.5]))
