"""Plans, manifests and replays: the exact snapshot ids, the manifest written before any
compute, and a re-run of a manifest that reads the same bytes."""

from __future__ import annotations

from pathlib import Path

import pytest
from experiment_data import SFT, ExperimentWriter, add_sft_rows

from posttrain.platform.experiments.blend_stream import StreamDigest, example_bytes, iter_examples
from posttrain.platform.experiments.config import ExperimentConfigError, load_experiment
from posttrain.platform.experiments.launch import execute, prepare
from posttrain.platform.experiments.manifest import (
    ManifestNotFoundError,
    find_manifest,
    manifests,
)
from posttrain.platform.experiments.plan import plan_experiment
from posttrain.platform.experiments.train import TrainingError
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse


def _sft_file(filled: Warehouse, write: ExperimentWriter) -> tuple[Path, int, int]:
    first = filled.snapshot_id(TableName.GOLD_SFT)
    assert first is not None
    second = add_sft_rows(filled, 100, 4)
    return write("sft.yaml", SFT.format(first=first)), first, second


def test_plan_pins_every_reference_to_its_exact_snapshot_id(
    filled: Warehouse, write_experiment: ExperimentWriter
) -> None:
    path, first, second = _sft_file(filled, write_experiment)
    plan = plan_experiment(filled, load_experiment(path, check_trainer=False))
    assert plan.snapshots == {"gold.sft": second, f"gold.sft@{first}": first}
    assert [(s.table, s.rows) for s in plan.sources] == [("gold.sft", 16), ("gold.sft", 12)]


def test_an_unknown_table_or_version_is_named_with_the_line_of_its_reference(
    filled: Warehouse, write_experiment: ExperimentWriter
) -> None:
    text = SFT.format(first="v9").replace("ref: gold.sft\n", "ref: gold.nope\n")
    parsed = load_experiment(write_experiment("bad.yaml", text), check_trainer=False)
    with pytest.raises(ExperimentConfigError) as caught:
        plan_experiment(filled, parsed)
    problems = {(p.key, p.line): p.message for p in caught.value.problems}
    assert set(problems) == {("data.sources[0].ref", 8), ("data.sources[1].ref", 10)}
    assert "no table named 'gold.nope'" in problems[("data.sources[0].ref", 8)]
    assert "'v9'" in problems[("data.sources[1].ref", 10)]


def test_an_unknown_filtered_snapshot_is_named_with_its_line(
    filled: Warehouse, write_experiment: ExperimentWriter
) -> None:
    text = SFT.format(first="x").replace("- ref: gold.sft@x", "- snapshot: never-frozen")
    parsed = load_experiment(write_experiment("snap.yaml", text), check_trainer=False)
    with pytest.raises(ExperimentConfigError, match=r"line 10, data\.sources\[1\]\.snapshot"):
        plan_experiment(filled, parsed)


def test_a_table_without_the_columns_the_trainer_reads_is_refused(
    filled: Warehouse, write_experiment: ExperimentWriter
) -> None:
    text = SFT.format(first="x").replace("kind: sft", "kind: dpo")
    text = text.replace("    - ref: gold.sft@x\n      weight: 0.25\n", "")
    text = text.replace("weight: 0.75", "weight: 1")
    parsed = load_experiment(write_experiment("dpo.yaml", text), check_trainer=False)
    with pytest.raises(ExperimentConfigError, match=r"gold\.sft has no column.*prompt, chosen"):
        plan_experiment(filled, parsed)


def test_the_manifest_is_recorded_before_any_compute_and_stays_when_training_fails(
    filled: Warehouse, write_experiment: ExperimentWriter, tmp_path: Path
) -> None:
    path, _, _ = _sft_file(filled, write_experiment)
    not_a_model = tmp_path / "not-a-model"  # exists, so it validates; holds no model
    not_a_model.mkdir()
    text = path.read_text().replace("base: tiny", f"base: {not_a_model}")
    broken = write_experiment("broken.yaml", text)
    manifest = prepare(filled, path=broken)
    assert [m.experiment_id for m in manifests(filled)] == [manifest.experiment_id]
    with pytest.raises(TrainingError, match="not-a-model"):
        execute(filled, manifest, tmp_path / "checkpoints", log=lambda _: None)
    recorded = find_manifest(filled, manifest.experiment_id)
    assert recorded == manifest
    assert recorded.git_sha and recorded.code_version
    assert {"pyiceberg", "pyarrow", "posttrain"} <= set(recorded.package_versions)


def _stream(warehouse: Warehouse, blend_json: str) -> bytes:
    return b"\n".join(example_bytes(row) for row in iter_examples(warehouse, blend_json))


def test_relaunching_a_manifest_reads_the_same_bytes_though_the_tables_moved_on(
    filled: Warehouse, write_experiment: ExperimentWriter
) -> None:
    path, _, _ = _sft_file(filled, write_experiment)
    original = prepare(filled, path=path)
    before = _stream(filled, original.blend)
    add_sft_rows(filled, 200, 5)  # gold.sft moves on: the file now plans other snapshots

    replay = prepare(filled, manifest=original.manifest_id)

    assert replay.experiment_id != original.experiment_id
    assert replay.replay_of == original.experiment_id
    assert (replay.manifest_id, replay.snapshots) == (original.manifest_id, original.snapshots)
    assert _stream(filled, replay.blend) == before
    fresh = prepare(filled, path=path)
    assert fresh.manifest_id != original.manifest_id
    assert _stream(filled, fresh.blend) != before


def test_the_stream_digest_covers_exactly_the_examples_handed_out(
    filled: Warehouse, write_experiment: ExperimentWriter
) -> None:
    path, _, _ = _sft_file(filled, write_experiment)
    manifest = prepare(filled, path=path)
    first, second = StreamDigest(), StreamDigest()
    rows = list(iter_examples(filled, manifest.blend, limit=5, digest=first))
    list(iter_examples(filled, manifest.blend, limit=5, digest=second))
    assert len(rows) == first.examples == 5
    assert first.hexdigest() == second.hexdigest()
    assert all(set(row) == {"messages"} for row in rows)


def test_relaunching_an_unknown_manifest_names_the_latest_launches(
    filled: Warehouse, write_experiment: ExperimentWriter
) -> None:
    path, _, _ = _sft_file(filled, write_experiment)
    launched = prepare(filled, path=path)
    with pytest.raises(ManifestNotFoundError, match=launched.experiment_id):
        prepare(filled, manifest="deadbeef")


def test_a_filtered_snapshot_source_pins_its_frozen_table(
    filled: Warehouse, write_experiment: ExperimentWriter
) -> None:
    from posttrain.platform.outcomes.snapshot import freeze

    frozen = freeze(filled, TableName.GOLD_SFT, "source = 'chat-a'", "chat-a-only")
    text = SFT.format(first="x").replace("- ref: gold.sft@x", "- snapshot: chat-a-only")
    plan = plan_experiment(filled, load_experiment(write_experiment("f.yaml", text)))
    assert plan.snapshots["snapshots.chat_a_only@chat-a-only"] == frozen.snapshot_id
    manifest = prepare(filled, path=write_experiment("f.yaml", text))
    # One pass over both sources (exhausted: drop): every row of each exactly once.
    assert len(list(iter_examples(filled, manifest.blend))) == 12 + frozen.rows == 18
