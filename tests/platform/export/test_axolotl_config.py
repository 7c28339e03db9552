"""The Axolotl dataset config the README documents reads what `posttrain export` writes.

Axolotl cannot be installed here (see the README), so its schema is pinned below: the
fields of ``SFTDataset`` in ``axolotl/utils/schemas/datasets.py`` of Axolotl 0.19.0, the last
release for Python 3.11. The README's YAML was also validated by that model out of tree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from posttrain.platform.export import data_file_name
from posttrain.platform.schemas import GOLD_SFT, MESSAGE_TYPE

README = Path(__file__).resolve().parents[3] / "README.md"
MARKER = "# axolotl: datasets for `posttrain export gold.sft --format jsonl --out exports/gold_sft`"
AXOLOTL_SFT_DATASET_FIELDS = {
    "chat_template", "chat_template_jinja", "conversation", "data_files",
    "drop_system_message", "ds_type", "field", "field_human", "field_messages", "field_model",
    "field_thinking", "field_tools", "input_format", "input_transform", "logprobs_field",
    "message_field_content", "message_field_role", "message_field_training",
    "message_field_training_detail", "message_property_mappings", "name", "path",
    "preprocess_shards", "revision", "roles", "roles_to_train", "shards", "shards_idx",
    "split", "split_thinking", "temperature", "template_thinking_key", "train_on_eos",
    "train_on_eot", "trust_remote_code", "type",
}  # fmt: skip


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    text = README.read_text(encoding="utf-8")
    block = text[text.index(MARKER) :].split("```", 1)[0]
    loaded: dict[str, Any] = yaml.safe_load(block)
    return loaded


def test_every_dataset_key_is_an_axolotl_sft_dataset_field(config: dict[str, Any]) -> None:
    [dataset] = config["datasets"]
    assert set(dataset) <= AXOLOTL_SFT_DATASET_FIELDS


def test_it_names_the_exported_file_and_the_messages_column(config: dict[str, Any]) -> None:
    [dataset] = config["datasets"]
    assert dataset["type"] == "chat_template"
    assert dataset["ds_type"] == "json"
    assert Path(dataset["data_files"]) == Path(dataset["path"]) / data_file_name("jsonl")
    assert dataset["field_messages"] in GOLD_SFT.names
    message_fields = {MESSAGE_TYPE.field(i).name for i in range(MESSAGE_TYPE.num_fields)}
    assert set(dataset["message_property_mappings"].values()) <= message_fields
    assert dataset["roles_to_train"] == ["assistant"]
