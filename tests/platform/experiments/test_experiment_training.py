"""Launches that train: TRL's SFT, DPO and GRPO on the pinned blend for two steps with a tiny
model, the checkpoint registered with its manifest, and its lineage down to bronze."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from experiment_data import SFT, add_sft_rows, fill, fill_pairs_and_prompts

from posttrain.cli import run
from posttrain.platform.evals.cache import EvalCache
from posttrain.platform.experiments.blend_stream import StreamDigest, iter_examples
from posttrain.platform.experiments.launch import LaunchResult, execute, prepare
from posttrain.platform.experiments.manifest import checkpoints
from posttrain.platform.schemas import TableName
from posttrain.platform.settings import project_root
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sft_launch(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Warehouse, LaunchResult]]:
    pytest.importorskip("trl")
    root = tmp_path_factory.mktemp("sft")
    warehouse = Warehouse(WarehouseSettings.local(root / "home"))
    fill(warehouse)
    first = warehouse.snapshot_id(TableName.GOLD_SFT)
    add_sft_rows(warehouse, 100, 4)
    path = root / "sft.yaml"
    # Packed, as a real SFT run would be: TRL packs the blend's conversations itself.
    text = SFT.format(first=first).replace("  max_examples", "  packing: true\n  max_examples")
    # Scored on two held-out items after training: the real eval runner on the checkpoint
    # (a random tiny model never stops: a few tokens are enough to score).
    text = text.replace("evals: []", "evals: [math_heldout]\neval_limit: 2\neval_max_tokens: 8")
    path.write_text(text.lstrip())
    manifest = prepare(warehouse, path=path)
    cache = EvalCache(root / "eval-cache.sqlite")
    yield (
        warehouse,
        execute(warehouse, manifest, root / "checkpoints", log=lambda _: None, eval_cache=cache),
    )


def test_sft_launch_trains_and_registers_its_checkpoint_with_the_manifest(
    sft_launch: tuple[Warehouse, LaunchResult],
) -> None:
    warehouse, result = sft_launch
    (registered,) = checkpoints(warehouse, result.manifest.experiment_id)
    assert registered == result.checkpoint
    assert (registered.step, registered.examples) == (2, 8)
    assert registered.manifest_id == result.manifest.manifest_id
    assert result.manifest.experiment_config().data.packing
    assert (Path(registered.path) / "config.json").is_file()
    assert registered.metrics["last_loss"] > 0


def test_the_launch_scores_its_checkpoint_into_eval_results_with_its_lineage(
    sft_launch: tuple[Warehouse, LaunchResult],
) -> None:
    warehouse, result = sft_launch
    manifest, checkpoint = result.manifest, result.checkpoint
    (outcome,) = result.evals
    assert (outcome.suite, outcome.ran, outcome.metrics["items"]) == ("math_heldout", True, 2)
    rows = _results_of(warehouse, outcome.metrics["run_id"])
    assert len(rows) == 2
    # gold.sft as frozen at launch, and the reference that named its first snapshot.
    current, (_, pinned_first) = manifest.snapshots["gold.sft"], manifest.corpus_refs
    assert {
        (row["suite"], row["checkpoint_id"], row["experiment_id"], row["corpus_version"])
        for row in rows
    } == {
        (
            "math_heldout",
            checkpoint.checkpoint_id,
            manifest.experiment_id,
            f"gold.sft@{current}, {pinned_first}",
        )
    }
    assert {row["model"] for row in rows} == {str(Path(checkpoint.path).resolve())}
    assert all(row["output"] is not None or row["error"] for row in rows)


def test_the_jobs_eval_step_scores_the_trained_checkpoint_the_same_way(
    sft_launch: tuple[Warehouse, LaunchResult],
) -> None:
    from posttrain.jobs.experiments import experiment_evals
    from posttrain.resources.warehouse import WarehouseResource

    warehouse, result = sft_launch
    home = warehouse.settings.warehouse.removeprefix("file://").removesuffix("/warehouse")
    checkpoint = {**result.checkpoint.__dict__, "created_at": str(result.checkpoint.created_at)}
    output = experiment_evals(
        result.manifest.as_dict(), checkpoint, warehouse=WarehouseResource(home=home)
    )
    (outcome,) = output.value
    rows = _results_of(warehouse, outcome["metrics"]["run_id"])
    assert len(rows) == 2
    assert {(row["checkpoint_id"], row["experiment_id"]) for row in rows} == {
        (result.checkpoint.checkpoint_id, result.manifest.experiment_id)
    }


def _results_of(warehouse: Warehouse, run_id: str) -> list[dict[str, Any]]:
    rows = warehouse.read(TableName.EVAL_RESULTS).to_pylist()
    return [row for row in rows if row["run_id"] == run_id]


def test_the_checkpoint_stream_digest_is_what_a_replay_of_its_manifest_reads(
    sft_launch: tuple[Warehouse, LaunchResult],
) -> None:
    warehouse, result = sft_launch
    add_sft_rows(warehouse, 300, 3)
    replay = prepare(warehouse, manifest=result.manifest.experiment_id)
    digest = StreamDigest()
    list(iter_examples(warehouse, replay.blend, limit=result.checkpoint.examples, digest=digest))
    assert digest.hexdigest() == result.checkpoint.stream_digest


def test_lineage_of_a_checkpoint_prints_the_chain_down_to_bronze_and_licenses(
    sft_launch: tuple[Warehouse, LaunchResult], capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse, result = sft_launch
    home = warehouse.settings.warehouse.removeprefix("file://").removesuffix("/warehouse")
    status = run(["lineage", f"checkpoint:{result.checkpoint.checkpoint_id}", "--home", home])
    out = capsys.readouterr().out
    assert status == 0, out
    snapshots = result.manifest.snapshots
    assert f"checkpoint {result.checkpoint.checkpoint_id}" in out
    assert f"experiment {result.manifest.experiment_id}" in out
    assert f"gold.sft = gold.sft@{snapshots['gold.sft']}: 16 rows" in out
    assert "← bronze.records@" in out
    assert "(16 found in bronze)" in out and "(12 found in bronze)" in out
    assert "← bronze.records@" in out
    rows = {tuple(line.split()[1:4:2]) for line in out.splitlines() if line.startswith("│")}
    assert {("chat-a", "14"), ("chat-b", "14"), ("CC-BY-4.0", "14"), ("MIT", "14")} <= rows


@pytest.mark.parametrize("name", ["dpo-tiny.yaml", "grpo-tiny.yaml"])
def test_the_shipped_dpo_and_grpo_examples_train_two_steps(
    filled: Warehouse, name: str, tmp_path: Path
) -> None:
    pytest.importorskip("trl")
    fill_pairs_and_prompts(filled)
    manifest = prepare(filled, path=project_root() / "experiments" / name)
    result = execute(filled, manifest, tmp_path / "checkpoints", log=lambda _: None)
    assert result.checkpoint.step == 2
    assert checkpoints(filled, manifest.experiment_id) == [result.checkpoint]
