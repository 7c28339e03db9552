"""Rows for the experiment tests: bronze records with their sources and licenses, and the
three corpora the trainers read (gold.sft, gold.dpo, gold.rl_prompts)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import make_message
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import Warehouse


def _append(
    warehouse: Warehouse, table: str, rows: list[dict[str, object]], lineage: Lineage
) -> int:
    data = pa.Table.from_pylist(rows, schema=TABLES[table].schema)
    snapshot_id = warehouse.append(table, data, lineage)
    assert snapshot_id is not None
    return snapshot_id


def add_sft_rows(warehouse: Warehouse, start: int, count: int) -> int:
    """Append ``count`` gold.sft rows (records ``r{start}``...) and their bronze records."""
    sources = ["chat-a", "chat-b"]
    bronze = [
        {
            "record_id": f"r{i}",
            "payload": "{}",
            "row_index": i + 1,
            "source": sources[i % 2],
            "source_uri": f"/data/{sources[i % 2]}.jsonl",
            "license": None,
        }
        for i in range(start, start + count)
    ]
    bronze_id = _append(warehouse, TableName.BRONZE_RECORDS, bronze, Lineage("bronze"))
    sft = [
        {
            "record_id": f"r{i}",
            "messages": [
                make_message("user", f"What is {i} plus {i}?"),
                make_message("assistant", f"{i} plus {i} is {2 * i}."),
            ],
            "source": sources[i % 2],
        }
        for i in range(start, start + count)
    ]
    return _append(
        warehouse, TableName.GOLD_SFT, sft, Lineage("gold", {TableName.BRONZE_RECORDS: bronze_id})
    )


def fill(warehouse: Warehouse) -> None:
    """lineage.sources (two licenses), bronze.records and gold.sft (12 rows)."""
    _append(
        warehouse,
        TableName.LINEAGE_SOURCES,
        [
            {"source": "chat-a", "license": "CC-BY-4.0"},
            {"source": "chat-b", "license": "MIT"},
        ],
        Lineage("sources"),
    )
    add_sft_rows(warehouse, 0, 12)


def fill_pairs_and_prompts(warehouse: Warehouse) -> None:
    """gold.dpo (6 pairs) and gold.rl_prompts (4 prompts any completion passes)."""
    dpo = [
        {
            "pair_id": f"p{i}",
            "prompt": [make_message("user", f"Name a prime above {10 * i}.")],
            "chosen": [make_message("assistant", "Here is one: 101.")],
            "rejected": [make_message("assistant", "Four.")],
        }
        for i in range(6)
    ]
    _append(warehouse, TableName.GOLD_DPO, dpo, Lineage("gold"))
    # Any non-empty completion passes "any": a reward a random model reaches.
    rl = [
        {
            "prompt_id": f"any:{i}",
            "prompt": [make_message("user", f"Say something, number {i}.")],
            "verifier_kind": "regex",
            "verifier_spec": '{"pattern": "."}',
            "reference": "something",
        }
        for i in range(4)
    ]
    _append(warehouse, TableName.GOLD_RL_PROMPTS, rl, Lineage("gold"))


ExperimentWriter = Callable[[str, str], Path]

SFT = """
name: sft-test
seed: 3
model:
  base: tiny
  tokenizer: posttrain-chat-8k
data:
  sources:
    - ref: gold.sft
      weight: 0.75
    - ref: gold.sft@{first}
      weight: 0.25
  seq_length: 256
  max_examples: 8
trainer:
  kind: sft
  settings:
    max_steps: 2
    per_device_train_batch_size: 2
evals: []
"""
