"""gold.dpo goes into TRL's DPOTrainer as it is, and TRL trains on exactly the answers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_trl_integration import _losses
from tiny_models import tiny_model

from posttrain.platform.evals import seed_humaneval
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.gold.tokenize import TokenizeConfig, load_tokenizer, tokenize_conversations
from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import SourceSpec
from posttrain.platform.preference import PreferenceConfig, build_dpo, build_preferences
from posttrain.platform.schemas import MESSAGES_TYPE, TableName
from posttrain.platform.warehouse import Warehouse

pytestmark = pytest.mark.slow

RECORDS: list[dict[str, Any]] = [
    {
        "prompt": "What is 12 plus 30? Explain briefly.",
        "chosen": "Twelve and thirty make 42, so the answer is 42.",
        "rejected": "About 40.",
    },
    {
        "prompt": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a prime number above 20."},
        ],
        "chosen": [{"role": "assistant", "content": "23 is prime."}],
        "rejected": [{"role": "assistant", "content": "21 is prime, I think."}],
    },
    {
        "chosen": [
            {"role": "user", "content": "Capital of Italy?"},
            {"role": "assistant", "content": "Rome."},
            {"role": "user", "content": "And of Spain?"},
            {"role": "assistant", "content": "Madrid is the capital of Spain."},
        ],
        "rejected": [
            {"role": "user", "content": "Capital of Italy?"},
            {"role": "assistant", "content": "Rome."},
            {"role": "user", "content": "And of Spain?"},
            {"role": "assistant", "content": "Barcelona."},
        ],
    },
]


@pytest.fixture
def gold_dpo(warehouse: Warehouse, tmp_path: Path) -> pa.Table:
    seed_humaneval(warehouse)
    for name, records in (("trl", RECORDS[:2]), ("transcripts", RECORDS[2:])):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records))
        ingest(warehouse, [SourceSpec(path=path, source=name)])
    build_preferences(warehouse, PreferenceConfig(), InProcessExecutor())
    assert build_dpo(warehouse).rows == 3
    return warehouse.read(TableName.GOLD_DPO)


def _train(dataset: Any, tmp_path: Path) -> Any:
    from trl import DPOConfig, DPOTrainer  # type: ignore[attr-defined]

    tokenizer = load_tokenizer("posttrain-chat-8k")
    args = DPOConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=2,
        learning_rate=1e-3,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=0,
        max_length=None,
    )
    trainer = DPOTrainer(
        model=tiny_model(len(tokenizer)),
        # A randomly initialized policy has no hub id to load the reference from.
        ref_model=tiny_model(len(tokenizer)),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    return trainer


def _assistant_mask(prompt: list[Any], answer: list[Any]) -> tuple[list[int], list[int]]:
    """Our own tokenization of prompt + answer: token ids and the assistant mask."""
    table = pa.table(
        {"record_id": ["x"], "messages": pa.array([prompt + answer], type=MESSAGES_TYPE)}
    )
    (row,) = tokenize_conversations(table, TokenizeConfig()).kept.to_pylist()
    return row["input_ids"], row["assistant_masks"]


def test_dpo_trainer_trains_on_gold_dpo_and_masks_exactly_the_answers(
    gold_dpo: pa.Table, tmp_path: Path
) -> None:
    from datasets import Dataset

    pq.write_table(gold_dpo, tmp_path / "dpo.parquet")
    dataset = Dataset.from_parquet(str(tmp_path / "dpo.parquet"))

    trainer = _train(dataset, tmp_path)

    assert all(math.isfinite(loss) for loss in _losses(trainer))
    prepared = trainer.train_dataset
    tokenizer = load_tokenizer("posttrain-chat-8k")
    for index, pair in enumerate(gold_dpo.to_pylist()):
        example = prepared[index]
        batch = trainer.data_collator([example])
        completion_mask = batch["completion_mask"].tolist()
        input_ids = batch["input_ids"].tolist()
        for row, side in enumerate(("chosen", "rejected")):
            ours_ids, ours_mask = _assistant_mask(pair["prompt"], pair[side])
            length = len(example["prompt_ids"]) + len(example[f"{side}_ids"])
            # TRL's sequence is ours, and it trains exactly on the tokens we mark as the final
            # answer (earlier assistant turns are part of the prompt), plus what the template
            # renders after the answer's end-of-turn token: the newline separating turns,
            # which TRL counts as completion and our SFT mask does not.
            assert input_ids[row][:length] == ours_ids
            start, end = _final_answer_span(ours_mask)
            assert tokenizer.decode(ours_ids[end:]).strip() == ""
            answer = [0] * start + [1] * (end - start) + [1] * (length - end)
            assert completion_mask[row][:length] == answer
            assert sum(completion_mask[row]) == len(example[f"{side}_ids"])


def _final_answer_span(mask: list[int]) -> tuple[int, int]:
    """``[start, end)`` of the last run of assistant tokens (the answer after the prompt)."""
    end = len(mask)
    while end and not mask[end - 1]:
        end -= 1
    start = end
    while start and mask[start - 1]:
        start -= 1
    return start, end
