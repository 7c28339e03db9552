"""TRL's GRPOTrainer trains on gold.rl_prompts with the reward function built from it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from tiny_models import tiny_model

from posttrain.platform.gold.tokenize import load_tokenizer
from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import make_message
from posttrain.platform.rl.rewards import reward_function
from posttrain.platform.schemas import GOLD_RL_PROMPTS, TableName
from posttrain.platform.warehouse import Warehouse

pytestmark = pytest.mark.slow


def _rl_prompts(warehouse: Warehouse) -> None:
    # Any non-empty completion passes "any", none passes "never": rewards of 1 and 0 that a
    # random model reaches, so the trainer's logged reward proves they arrived.
    rows = [
        {
            "prompt_id": f"{verdict}:{i}",
            "prompt": [make_message("user", f"Say something, number {i}.")],
            "verifier_kind": "regex",
            "verifier_spec": '{"pattern": "."}' if verdict == "any" else '{"pattern": "^$x"}',
            "reference": "something",
        }
        for verdict in ("any", "never")
        for i in range(2)
    ]
    warehouse.append(
        TableName.GOLD_RL_PROMPTS,
        pa.Table.from_pylist(rows, schema=GOLD_RL_PROMPTS),
        Lineage("test"),
    )


def test_grpo_trains_on_rl_prompts_and_receives_the_verifier_rewards(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer  # type: ignore[attr-defined]

    _rl_prompts(warehouse)
    table = warehouse.read(TableName.GOLD_RL_PROMPTS, columns=("prompt_id", "prompt"))
    dataset = Dataset.from_list(table.to_pylist())
    verifier = reward_function(warehouse)
    seen: list[tuple[str, float]] = []

    def posttrain_verifier(prompts: Any, completions: Any, **kwargs: Any) -> list[float]:
        rewards = verifier(prompts, completions, **kwargs)
        seen.extend(zip(kwargs["prompt_id"], rewards, strict=True))
        return rewards

    tokenizer = load_tokenizer("posttrain-chat-8k")
    args = GRPOConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=2,
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=8,
        learning_rate=1e-3,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=tiny_model(len(tokenizer)),
        reward_funcs=posttrain_verifier,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()

    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2 and all(math.isfinite(entry["loss"]) for entry in logs)
    assert seen, "the reward function was never called"
    assert {reward for pid, reward in seen if pid.startswith("never:")} == {0.0}
    assert 1.0 in {reward for pid, reward in seen if pid.startswith("any:")}
    logged = [entry["rewards/posttrain_verifier/mean"] for entry in logs]
    calls = len(seen) // len(logs)
    expected = [sum(r for _, r in seen[i * calls : (i + 1) * calls]) / calls for i in range(2)]
    assert logged == pytest.approx(expected)
