"""A new corpus version runs the evals configured for its corpus (posttrain.yaml evals:)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from fake_openai import FakeOpenAI, Reply, prompt_of
from versions_data import build

from posttrain.definitions import defs
from posttrain.jobs.evals import eval_comparison_job
from posttrain.jobs.versions import corpus_version_job
from posttrain.platform import versions as v
from posttrain.platform.errors import ConfigError
from posttrain.platform.evals import load_math_heldout, run_suite, runner_for
from posttrain.platform.settings import load_settings
from posttrain.platform.warehouse import Warehouse, WarehouseSettings
from posttrain.resources import WarehouseResource

MATH = load_math_heldout().to_pylist()


def answer(body: dict[str, Any], seen: int) -> Reply:
    item = next(row for row in MATH if row["question"] in prompt_of(body))
    return Reply.text(f"**Answer:** {item['answer']}")


def run_config(corpus: str, version: str) -> dg.RunConfig:
    config = {"config": {"corpus": corpus, "version": version}}
    return dg.RunConfig(ops={"corpus_version_stats": config, "corpus_version_evals": config})


def test_a_new_version_runs_its_configured_evals_and_shows_the_comparison(
    tmp_path: Path,
) -> None:
    wh = Warehouse(WarehouseSettings.local(tmp_path))
    build(wh, range(3))
    v.create_version(wh, "sft", "v1")
    with FakeOpenAI(answer) as server:
        (tmp_path / "posttrain.yaml").write_text(
            "evals:\n"
            "  on_corpus_version:\n"
            f"    - {{corpus: sft, suites: [math_heldout], model: 'openai:{server.base_url}#m',"
            " limit: 3}\n"
            f"    - {{corpus: dpo, suites: [humaneval], model: 'openai:{server.base_url}#m'}}\n"
        )
        result = corpus_version_job.execute_in_process(
            run_config=run_config("sft", "v1"),
            resources={"warehouse": WarehouseResource(home=str(tmp_path))},
        )
        assert len(server.requests) == 3  # the dpo entry is not for this corpus
    assert result.success
    (summary,) = result.output_for_node("corpus_version_evals")
    assert (summary["suite"], summary["score"], summary["corpus_version"]) == (
        "math_heldout",
        1.0,
        "sft@v1",
    )
    rows = wh.read("eval.results").to_pylist()
    assert {row["corpus_version"] for row in rows} == {"sft@v1"} and len(rows) == 3
    (materialization,) = [
        m
        for m in result.asset_materializations_for_node("corpus_version_evals")
        if m.asset_key.to_user_string() == "eval/results"
    ]
    comparison = materialization.metadata["comparison"]
    assert isinstance(comparison, dg.MarkdownMetadataValue)
    assert "sft@v1" in comparison.md_str and "data:image/png;base64," in comparison.md_str


def test_the_evals_section_is_typed(tmp_path: Path) -> None:
    (tmp_path / "posttrain.yaml").write_text(
        "evals:\n  on_corpus_version:\n    - {corpus: sft, suites: [], model: x}\n"
    )
    with pytest.raises(ConfigError, match=r"posttrain.yaml: evals.on_corpus_version.0.suites"):
        load_settings(tmp_path)
    (tmp_path / "posttrain.yaml").write_text(
        "evals:\n  on_corpus_version:\n"
        "    - {corpus: sft, suites: [humaneval], model: x, lmit: 3}\n"
    )
    with pytest.raises(ConfigError, match="lmit"):
        load_settings(tmp_path)


def test_the_comparison_job_shows_cli_runs_on_the_results_asset(tmp_path: Path) -> None:
    wh = Warehouse(WarehouseSettings.local(tmp_path))
    with FakeOpenAI(answer) as server:
        runner = runner_for(f"openai:{server.base_url}#m", use_cache=False)
        run_suite(wh, "math_heldout", runner, corpus_version="sft@v7", limit=2)
    assert "eval_comparison_job" in {job.name for job in defs.jobs or []}
    result = eval_comparison_job.execute_in_process(
        resources={"warehouse": WarehouseResource(home=str(tmp_path))}
    )
    assert result.success and result.output_for_node("eval_comparison") == 1
    (observation,) = [
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert observation.asset_key.to_user_string() == "eval/results"
    comparison = observation.metadata["comparison"]
    assert isinstance(comparison, dg.MarkdownMetadataValue)
    assert "sft@v7" in comparison.md_str
