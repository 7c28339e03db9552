"""Packed tables are keyed by what made them: tokenizer, template, mask policy, length."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from posttrain.platform import checks
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.gold.build import GoldSftConfig, build_gold_packed
from posttrain.platform.gold.chat_render import SHIPPED_TOKENIZERS_DIR
from posttrain.platform.gold.pack_keys import (
    PackKey,
    UnknownPackKeyError,
    pack_key,
    packings,
    read_packing,
)
from posttrain.platform.gold.packing import Overflow, PackConfig
from posttrain.platform.gold.tokenize import SHIPPED_TOKENIZER, TokenizeConfig
from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import make_message
from posttrain.platform.schemas import GOLD_SFT, TableName
from posttrain.platform.warehouse import Warehouse

SHIPPED = SHIPPED_TOKENIZERS_DIR / SHIPPED_TOKENIZER


def _gold_sft(warehouse: Warehouse, count: int = 6) -> None:
    nulls = [None] * count
    rows = pa.table(
        {
            "record_id": [f"r{i}" for i in range(count)],
            "messages": [
                [make_message("user", f"What is {i} + {i}?"), make_message("assistant", f"{2 * i}")]
                for i in range(count)
            ],
            "source": nulls,
            "workspace": nulls,
            "license": nulls,
            "checkpoint": nulls,
        },
        schema=GOLD_SFT,
    )
    warehouse.overwrite(TableName.GOLD_SFT, rows, Lineage("test"))


def _other_template(tmp_path: Path) -> str:
    """A copy of the shipped tokenizer whose chat template differs by a comment."""
    other = tmp_path / "other-base-model"
    shutil.copytree(SHIPPED, other)
    template = other / "chat_template.jinja"
    template.write_text("{#- another base model -#}\n" + template.read_text())
    return str(other)


def _other_vocab(tmp_path: Path) -> str:
    """A copy of the shipped tokenizer with one more token in its vocabulary."""
    from tokenizers import Tokenizer

    other = tmp_path / "bigger-vocab"
    shutil.copytree(SHIPPED, other)
    tokenizer = Tokenizer.from_file(str(other / "tokenizer.json"))
    tokenizer.add_tokens(["<|posttrain-extra|>"])
    tokenizer.save(str(other / "tokenizer.json"))
    return str(other)


def _config(tokenizer: str = SHIPPED_TOKENIZER, seq_length: int = 64) -> GoldSftConfig:
    return GoldSftConfig(
        tokenize=TokenizeConfig(tokenizer=tokenizer), pack=PackConfig(seq_length=seq_length)
    )


def test_two_tokenizers_make_two_packings_that_coexist(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    _gold_sft(warehouse)
    first = build_gold_packed(warehouse, _config(), InProcessExecutor())
    second = build_gold_packed(warehouse, _config(_other_template(tmp_path)), InProcessExecutor())

    assert first.pack_key != second.pack_key
    assert sorted(packings(warehouse)["pack_key"].to_pylist()) == sorted(
        [first.pack_key, second.pack_key]
    )
    for report in (first, second):
        packed = read_packing(warehouse, report.pack_key)
        assert packed.num_rows == report.stats.packs > 0
        assert checks.packs_cover_records(warehouse, pack_key=report.pack_key).passed
    assert checks.keys_unique(warehouse, TableName.GOLD_SFT_PACKED).passed


def test_repacking_with_an_existing_key_writes_no_snapshot(warehouse: Warehouse) -> None:
    _gold_sft(warehouse)
    first = build_gold_packed(warehouse, _config(), InProcessExecutor())
    snapshots = len(warehouse.table(TableName.GOLD_SFT_PACKED).snapshots())

    again = build_gold_packed(warehouse, _config(), InProcessExecutor())

    assert again.skipped
    assert again.snapshot_id == first.snapshot_id
    assert again.pack_key == first.pack_key
    assert again.stats == first.stats
    assert len(warehouse.table(TableName.GOLD_SFT_PACKED).snapshots()) == snapshots


def test_a_new_gold_sft_snapshot_repacks_the_same_key_in_place(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    _gold_sft(warehouse)
    other = build_gold_packed(warehouse, _config(_other_template(tmp_path)), InProcessExecutor())
    first = build_gold_packed(warehouse, _config(), InProcessExecutor())
    _gold_sft(warehouse, count=9)

    again = build_gold_packed(warehouse, _config(), InProcessExecutor())

    assert not again.skipped and again.snapshot_id != first.snapshot_id
    assert again.stats.examples == 9
    assert checks.packs_cover_records(warehouse, pack_key=again.pack_key).passed
    # The other base model's packing is untouched (it still packs the older gold.sft).
    assert read_packing(warehouse, other.pack_key).num_rows == other.stats.packs


@pytest.mark.parametrize(
    "change",
    [
        {"tokenizer": "another-name"},
        {"tokenizer_hash": "0" * 64},
        {"chat_template_hash": "1" * 64},
        {"mask_policy": "all_tokens"},
        {"seq_length": 4096},
        {"overflow": Overflow.SPLIT.value},
    ],
)
def test_the_key_changes_when_any_part_changes(change: dict[str, object]) -> None:
    key = pack_key(_config())
    assert dataclasses.replace(key, **change).value != key.value  # type: ignore[arg-type]


def test_the_key_follows_the_tokenizer_files_not_only_its_name(tmp_path: Path) -> None:
    shipped = pack_key(_config())
    template = pack_key(_config(_other_template(tmp_path)))
    vocab = pack_key(_config(_other_vocab(tmp_path)))

    assert template.chat_template_hash != shipped.chat_template_hash
    assert template.tokenizer_hash == shipped.tokenizer_hash
    assert vocab.tokenizer_hash != shipped.tokenizer_hash
    assert vocab.chat_template_hash == shipped.chat_template_hash
    assert pack_key(_config(seq_length=128)).value != shipped.value
    assert pack_key(_config()) == shipped  # the same parts, the same key


def test_the_key_is_stable_across_processes() -> None:
    key = PackKey("t", "a" * 64, "b" * 64, "assistant_only", 2048, "truncate")
    assert key.value == PackKey("t", "a" * 64, "b" * 64, "assistant_only", 2048, "truncate").value
    assert len(key.value) == 16


def test_reading_an_unknown_key_lists_the_known_ones(warehouse: Warehouse) -> None:
    _gold_sft(warehouse)
    report = build_gold_packed(warehouse, _config(), InProcessExecutor())
    with pytest.raises(UnknownPackKeyError, match=report.pack_key):
        read_packing(warehouse, "0123456789abcdef")
