"""A local transformers checkpoint as an eval runner (a tiny random model, CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import tiny_model

from posttrain.platform.evals import TransformersRunner, run_suite, runner_for
from posttrain.platform.evals.cache import EvalCache
from posttrain.platform.evals.runners import GenerationSettings
from posttrain.platform.gold.tokenize import load_tokenizer
from posttrain.platform.warehouse import Warehouse

# Imports torch and runs a model: the other torch tests (TRL) are slow too.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-layer random Qwen2 with the shipped chat tokenizer, saved as a checkpoint."""
    path = tmp_path_factory.mktemp("tiny-checkpoint")
    tokenizer = load_tokenizer("posttrain-chat-8k")
    tiny_model(len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_a_local_checkpoint_that_never_stops_gives_per_item_errors(
    warehouse: Warehouse, checkpoint: Path, tmp_path: Path
) -> None:
    # Random weights rarely say end-of-sequence: the endless-text model, cut at max_tokens.
    runner = runner_for(
        f"local:{checkpoint}",
        settings=GenerationSettings(max_tokens=8),
        cache=EvalCache(tmp_path / "cache.sqlite"),
    )
    assert isinstance(runner, TransformersRunner)
    summary = run_suite(warehouse, "math_heldout", runner, experiment_id="tiny", limit=2)
    assert (summary.items, summary.score, summary.errors) == (2, 0.0, 2)
    rows = warehouse.read("eval.results").to_pylist()
    assert {row["error"] for row in rows} == {"output cut at max_tokens=8"}
    assert all(row["output"] and row["model"] == str(checkpoint.resolve()) for row in rows)


def test_a_checkpoint_that_does_not_load_is_recorded_not_raised(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    summary = run_suite(
        warehouse, "math_heldout", runner_for(str(broken), use_cache=False), limit=2
    )
    assert (summary.items, summary.errors) == (2, 2)
    assert all(row["error"] for row in warehouse.read("eval.results").to_pylist())


def test_eval_run_of_a_registered_checkpoint_records_its_id_and_experiment(
    warehouse: Warehouse, checkpoint: Path, tmp_path: Path
) -> None:
    # The `warehouse` fixture's home (tests/conftest.py), as the CLI's --home.
    import pyarrow as pa

    from posttrain.cli import run
    from posttrain.platform.experiments.manifest import Checkpoint
    from posttrain.platform.lineage import Lineage
    from posttrain.platform.schemas import TABLES, TableName

    registered = Checkpoint(
        checkpoint_id="tiny-exp:step-2",
        path=str(checkpoint),
        experiment_id="tiny-exp",
        manifest_id="m1",
        step=2,
        examples=4,
        stream_digest="0" * 64,
    )
    name = TableName.LINEAGE_CHECKPOINTS
    rows = pa.Table.from_pylist([registered.row()], schema=TABLES[name].schema)
    warehouse.append_new(name, rows, "checkpoint_id", Lineage("test"))
    home = tmp_path / "home"
    args = ["eval", "run", "math_heldout", "--checkpoint", "tiny-exp:step-2", "--limit", "1"]
    assert run([*args, "--max-tokens", "4", "--no-cache", "--home", str(home)]) in (0, 1)
    [result] = warehouse.read("eval.results").to_pylist()
    assert result["checkpoint_id"] == "tiny-exp:step-2"
    assert result["experiment_id"] == "tiny-exp"
    assert result["model"] == str(checkpoint.resolve())
