from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from posttrain.platform.gold.packing import (
    Overflow,
    PackConfig,
    PackingError,
    best_fit_decreasing,
    pack_sequences,
)
from posttrain.platform.schemas import PACKED_SEQUENCES


def _tokenized(lengths: list[int], *, seed: int = 0, trainable: bool = True) -> pa.Table:
    """Rows ``t0000``, ``t0001``, ... with random ids; masks all 1 (or all 0)."""
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "record_id": [f"t{index:04d}" for index in range(len(lengths))],
            "input_ids": pa.array(
                [rng.integers(0, 8192, n).tolist() for n in lengths], type=pa.list_(pa.int32())
            ),
            "assistant_masks": pa.array(
                [[int(trainable)] * n for n in lengths], type=pa.list_(pa.int8())
            ),
        }
    )


def _random_lengths(count: int, seed: int, high: int) -> list[int]:
    lengths: list[int] = np.random.default_rng(seed).integers(1, high, count).tolist()
    return lengths


def test_best_fit_puts_each_item_in_the_tightest_pack_that_holds_it() -> None:
    # After 8, 6 and 3 the packs have 2 and 1 tokens free: the 1 fits both and goes to the
    # tighter, later pack (first fit would pick pack 0).
    assert best_fit_decreasing(np.array([8, 6, 3, 1]), 10).tolist() == [0, 1, 1, 1]


def test_no_pack_exceeds_seq_length() -> None:
    result = pack_sequences(_tokenized(_random_lengths(500, 1, 300)), PackConfig(seq_length=256))
    assert max(result.packs["num_tokens"].to_pylist()) <= 256
    assert all(
        sum(lengths) == total
        for lengths, total in zip(
            result.packs["seq_lengths"].to_pylist(),
            result.packs["num_tokens"].to_pylist(),
            strict=True,
        )
    )


def test_every_record_appears_exactly_once() -> None:
    tokenized = _tokenized(_random_lengths(400, 2, 200))
    result = pack_sequences(tokenized, PackConfig(seq_length=256))
    placed = [rid for rids in result.packs["record_ids"].to_pylist() for rid in rids]
    assert sorted(placed) == tokenized["record_id"].to_pylist()


def test_packs_hold_the_tokens_and_masks_of_their_records() -> None:
    tokenized = _tokenized(_random_lengths(60, 3, 100))
    tokenized = tokenized.set_column(
        2,
        "assistant_masks",
        pa.array(
            [[i % 2 for i in range(len(ids))] for ids in tokenized["input_ids"].to_pylist()],
            type=pa.list_(pa.int8()),
        ),
    )
    rows = {row["record_id"]: row for row in tokenized.to_pylist()}
    for pack in pack_sequences(tokenized, PackConfig(seq_length=128)).packs.to_pylist():
        records = [rows[rid] for rid in pack["record_ids"]]
        assert pack["input_ids"] == [t for record in records for t in record["input_ids"]]
        assert pack["assistant_masks"] == [m for r in records for m in r["assistant_masks"]]
        assert pack["seq_lengths"] == [len(record["input_ids"]) for record in records]


def test_efficiency_on_a_case_that_packs_perfectly() -> None:
    result = pack_sequences(_tokenized([6, 4, 5, 5, 3, 7]), PackConfig(seq_length=10))
    assert result.stats.packs == 3
    assert result.stats.efficiency == 1.0
    assert result.packs["seq_lengths"].to_pylist() == [[7, 3], [6, 4], [5, 5]]


def test_packing_is_identical_whatever_the_input_order() -> None:
    tokenized = _tokenized([50, 30, 30, 30, 20, 20, 70, 10, 10, 5] * 20)
    shuffled = tokenized.take(np.random.default_rng(7).permutation(tokenized.num_rows))
    first = pack_sequences(tokenized, PackConfig(seq_length=100)).packs
    second = pack_sequences(shuffled, PackConfig(seq_length=100)).packs
    assert first.equals(second)


def test_same_packs_as_trl_bfd_given_the_same_order() -> None:
    from trl.data_utils import _pack_bfd

    lengths = _random_lengths(300, 4, 400)
    tokenized = _tokenized(lengths)
    ours = pack_sequences(tokenized, PackConfig(seq_length=512)).packs
    # TRL sorts by length only; hand it rows already in our (length, record_id) order.
    order = sorted(range(len(lengths)), key=lambda index: (-lengths[index], index))
    theirs = _pack_bfd(tokenized.select(["input_ids"]).take(order), 512)
    assert ours["seq_lengths"].to_pylist() == theirs["seq_lengths"].to_pylist()
    assert ours["input_ids"].to_pylist() == theirs["input_ids"].to_pylist()


def test_truncate_keeps_the_first_seq_length_tokens_and_counts_the_cut() -> None:
    tokenized = _tokenized([12, 3])
    result = pack_sequences(tokenized, PackConfig(seq_length=8))
    assert result.packs["input_ids"].to_pylist()[0] == tokenized["input_ids"].to_pylist()[0][:8]
    assert result.stats.truncated_examples == 1
    assert result.stats.dropped_tokens == 4
    assert result.stats.tokens == 11


def test_split_keeps_every_token_in_pieces_of_at_most_seq_length() -> None:
    tokenized = _tokenized([20, 5])
    result = pack_sequences(tokenized, PackConfig(seq_length=8, overflow=Overflow.SPLIT))
    assert result.stats.split_examples == 1
    assert result.stats.tokens == 25
    assert result.stats.dropped_tokens == 0
    assert sorted(n for lengths in result.packs["seq_lengths"].to_pylist() for n in lengths) == [
        4,
        5,
        8,
        8,
    ]


def test_sequences_without_trainable_tokens_are_dropped_and_named() -> None:
    trained, untrained = _tokenized([10]), _tokenized([6], trainable=False)
    untrained = untrained.set_column(0, "record_id", pa.array(["silent"]))
    result = pack_sequences(pa.concat_tables([trained, untrained]), PackConfig(seq_length=16))
    assert result.dropped_record_ids == ["silent"]
    assert result.stats.dropped_examples == 1
    assert result.packs["record_ids"].to_pylist() == [["t0000"]]


def test_output_has_the_gold_sft_packed_schema() -> None:
    result = pack_sequences(_tokenized([3, 4]), PackConfig(seq_length=8))
    assert result.packs.schema == PACKED_SEQUENCES
    assert result.packs["pack_id"].to_pylist() == [0]


def test_empty_input_gives_no_packs() -> None:
    result = pack_sequences(_tokenized([]), PackConfig(seq_length=8))
    assert result.packs.num_rows == 0
    assert result.stats.efficiency == 0.0


def test_repeated_record_id_is_refused() -> None:
    tokenized = _tokenized([3, 4]).set_column(0, "record_id", pa.array(["same", "same"]))
    with pytest.raises(PackingError, match="'same' appears 2 times"):
        pack_sequences(tokenized, PackConfig(seq_length=8))


def test_missing_columns_are_refused() -> None:
    with pytest.raises(PackingError, match="assistant_masks"):
        pack_sequences(_tokenized([3]).drop_columns(["assistant_masks"]), PackConfig())


def test_stats_metadata_reports_efficiency() -> None:
    metadata = pack_sequences(_tokenized([6, 2]), PackConfig(seq_length=8)).stats.as_metadata()
    assert metadata["efficiency"] == 1.0
    assert metadata["packs"] == 1
