"""Eval runs against a real local HTTP endpoint that speaks the OpenAI chat API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest
from fake_openai import FakeOpenAI, Reply, prompt_of

from posttrain.platform.errors import ConfigError
from posttrain.platform.evals import load_humaneval, load_math_heldout, run_suite, runner_for
from posttrain.platform.evals.cache import EvalCache
from posttrain.platform.evals.compare import compare, comparison_markdown
from posttrain.platform.evals.runners import GenerationSettings, OpenAIRunner
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse

RESULTS = TableName.EVAL_RESULTS
HUMANEVAL = {row["item_id"]: row for row in load_humaneval().to_pylist()}
MATH = {row["item_id"]: row for row in load_math_heldout().to_pylist()}
FIRST_MATH = sorted(MATH)
# Fast failure settings: no test waits on a real backoff. The timeout stays generous: a
# loaded CI machine can pause a 2 s request (the timeout tests set their own).
QUICK = GenerationSettings(timeout_s=30.0, retries=2, backoff_s=0.0, max_tokens=64)


def humaneval_item(body: dict[str, Any]) -> dict[str, Any]:
    text = prompt_of(body)
    return next(row for row in HUMANEVAL.values() if row["prompt"] in text)


def canonical(body: dict[str, Any], seen: int) -> Reply:
    row = humaneval_item(body)
    return Reply.text(f"Here it is:\n```python\n{row['prompt']}{row['canonical_solution']}```")


def math_item(body: dict[str, Any]) -> dict[str, Any]:
    text = prompt_of(body)
    return next(row for row in MATH.values() if row["question"] in text)


def runner(server: FakeOpenAI, cache: EvalCache | None, **settings: Any) -> OpenAIRunner:
    made = runner_for(
        f"openai:{server.base_url}#fake-model",
        settings=QUICK.model_copy(update=settings),
        cache=cache,
        use_cache=cache is not None,
    )
    assert isinstance(made, OpenAIRunner)
    return made


def results(warehouse: Warehouse, run_id: str) -> dict[str, dict[str, Any]]:
    data = warehouse.read(RESULTS)
    data = data.filter(pc.equal(data["run_id"], run_id))
    return {row["item"]: row for row in data.to_pylist()}


def test_canonical_humaneval_solutions_score_pass_at_1_of_one(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    with FakeOpenAI(canonical) as server:
        summary = run_suite(
            warehouse,
            "humaneval",
            runner(server, EvalCache(tmp_path / "cache.sqlite")),
            experiment_id="exp-1",
            corpus_version="sft@v1",
            limit=3,
        )
    assert (summary.items, summary.score, summary.errors, summary.metric) == (3, 1.0, 0, "pass@1")
    rows = results(warehouse, summary.run_id)
    assert sorted(rows) == ["HumanEval/0", "HumanEval/1", "HumanEval/10"]
    for row in rows.values():
        assert row["score"] == 1.0 and row["error"] is None
        assert row["model"] == f"openai:{server.base_url}#fake-model"
        assert (row["experiment_id"], row["corpus_version"]) == ("exp-1", "sft@v1")
        assert row["latency_s"] > 0 and row["created_at"] is not None
        assert "tests passed" in row["detail"]


def test_wrong_humaneval_solutions_score_zero(warehouse: Warehouse) -> None:
    def wrong(body: dict[str, Any], seen: int) -> Reply:
        row = humaneval_item(body)
        return Reply.text(f"```python\ndef {row['entry_point']}(*args):\n    return None\n```")

    with FakeOpenAI(wrong) as server:
        summary = run_suite(warehouse, "humaneval", runner(server, None), limit=3)
    assert (summary.items, summary.score, summary.errors) == (3, 0.0, 0)
    assert all("tests failed" in r["detail"] for r in results(warehouse, summary.run_id).values())


def test_a_rerun_is_served_from_the_cache_without_a_request(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    def answer(body: dict[str, Any], seen: int) -> Reply:
        return Reply.text(f"**Answer:** {math_item(body)['answer']}")

    cache_file = tmp_path / "cache.sqlite"
    with FakeOpenAI(answer) as server:
        first = run_suite(warehouse, "math_heldout", runner(server, EvalCache(cache_file)), limit=4)
        asked = len(server.requests)
        # A new process's cache: the same file, opened again.
        second = run_suite(
            warehouse, "math_heldout", runner(server, EvalCache(cache_file)), limit=4
        )
        assert len(server.requests) == asked == 4
        # Other settings are another question: asked again.
        third = run_suite(
            warehouse, "math_heldout", runner(server, EvalCache(cache_file), max_tokens=65), limit=4
        )
        assert len(server.requests) == 8
    assert (first.score, first.cached, second.score, second.cached) == (1.0, 0, 1.0, 4)
    assert third.cached == 0
    assert all(
        r["cached"] and r["latency_s"] == 0 for r in results(warehouse, second.run_id).values()
    )


def test_429_then_success_is_retried(warehouse: Warehouse) -> None:
    def busy_first(body: dict[str, Any], seen: int) -> Reply:
        if seen == 0:
            return Reply.http(429, retry_after="0")
        if seen == 1:
            return Reply.http(503)
        return Reply.text(f"**Answer:** {math_item(body)['answer']}")

    with FakeOpenAI(busy_first) as server:
        summary = run_suite(warehouse, "math_heldout", runner(server, None), limit=2)
        assert len(server.requests) == 6  # 429, 503, then the answer, for each item
    assert (summary.score, summary.errors) == (1.0, 0)


def test_timeout_malformed_endless_and_cut_outputs_are_per_item_errors(
    warehouse: Warehouse,
) -> None:
    behaviour = {
        FIRST_MATH[0]: Reply("sleep", seconds=5.0),
        FIRST_MATH[1]: Reply("malformed", content='{"choices": [{"message": 3}]'),
        FIRST_MATH[2]: Reply("endless"),
        FIRST_MATH[3]: Reply.text("la " * 50, finish_reason="length"),
        FIRST_MATH[4]: Reply.http(500),
        FIRST_MATH[5]: Reply("drop"),
    }

    def misbehave(body: dict[str, Any], seen: int) -> Reply:
        item = math_item(body)
        return behaviour.get(item["item_id"], Reply.text(f"**Answer:** {item['answer']}"))

    with FakeOpenAI(misbehave) as server:
        summary = run_suite(
            warehouse,
            "math_heldout",
            runner(server, None, timeout_s=1.0, max_response_bytes=100_000, concurrency=8),
            limit=7,
        )
    rows = results(warehouse, summary.run_id)
    assert (summary.items, summary.errors) == (7, 6)
    errors = {item: row["error"] for item, row in rows.items()}
    assert "timed out after 1 s" in errors[FIRST_MATH[0]]
    assert "malformed response" in errors[FIRST_MATH[1]]
    assert "endless output" in errors[FIRST_MATH[2]] or "timed out" in errors[FIRST_MATH[2]]
    assert "output cut at max_tokens=64" in errors[FIRST_MATH[3]]
    assert rows[FIRST_MATH[3]]["output"].startswith("la la")  # kept, for a person to read
    assert "gave up after 3 attempts: HTTP 500" in errors[FIRST_MATH[4]]
    assert "gave up after 3 attempts" in errors[FIRST_MATH[5]]
    assert errors[FIRST_MATH[6]] is None and rows[FIRST_MATH[6]]["score"] == 1.0
    assert all(rows[item]["score"] == 0.0 for item in FIRST_MATH[:6])


def test_an_unreachable_endpoint_records_every_item_as_an_error(warehouse: Warehouse) -> None:
    with FakeOpenAI(lambda body, seen: Reply.text("")) as server:
        base_url = server.base_url  # the port is free again once the server is gone
    settings = QUICK.model_copy(update={"concurrency": 2})
    dead = runner_for(f"openai:{base_url}#m", settings=settings, use_cache=False)
    assert isinstance(dead, OpenAIRunner)
    summary = run_suite(warehouse, "math_heldout", dead, limit=12)
    assert (summary.items, summary.errors, summary.score) == (12, 12, 0.0)
    assert all("ConnectError" in r["error"] for r in results(warehouse, summary.run_id).values())
    # The items in flight when the first gave up retried; the others did not wait it out.
    assert dead.requests <= 2 * (QUICK.retries + 1)


@pytest.mark.parametrize(
    "spec", ["openai:127.0.0.1:8000#m", "openai:http://h/v1", "openai:http://h/v1#", "/no/such/dir"]
)
def test_a_bad_model_spec_fails_before_anything_runs(spec: str) -> None:
    with pytest.raises(ConfigError, match="model spec"):
        runner_for(spec, use_cache=False)


def test_compare_shows_the_metric_per_corpus_version(warehouse: Warehouse) -> None:
    def half_right(body: dict[str, Any], seen: int) -> Reply:
        item = math_item(body)
        good = FIRST_MATH.index(item["item_id"]) % 2 == 0 or body["model"] == "better"
        return Reply.text(f"**Answer:** {item['answer'] if good else 'no idea'}")

    with FakeOpenAI(half_right) as server:
        for version in ("sft@v1", "sft@v2"):
            for model in ("base", "better"):
                made = runner_for(
                    f"openai:{server.base_url}#{model}", settings=QUICK, use_cache=False
                )
                run_suite(warehouse, "math_heldout", made, corpus_version=version, limit=4)
    runs = compare(warehouse)
    assert [(r.corpus_version, r.model.rsplit("#")[1], r.score) for r in runs] == [
        ("sft@v1", "base", 0.5),
        ("sft@v1", "better", 1.0),
        ("sft@v2", "base", 0.5),
        ("sft@v2", "better", 1.0),
    ]
    assert [r.corpus_version for r in compare(warehouse, models=["#better"], latest=True)] == [
        "sft@v1",
        "sft@v2",
    ]
    markdown = comparison_markdown(runs)
    assert "| math_heldout | exact_match | 0.500 | 4 | 0 |" in markdown
    assert "](data:image/png;base64,iVBORw0KGgo" in markdown  # a PNG, embedded


def test_an_output_that_exits_early_does_not_pass_humaneval(warehouse: Warehouse) -> None:
    def exit_zero(body: dict[str, Any], seen: int) -> Reply:
        row = humaneval_item(body)
        code = f"import sys\nsys.exit(0)\n{row['prompt']}    return None\n"
        if row["item_id"] == "HumanEval/1":  # or from inside the function, when called
            code = f"{row['prompt']}    raise SystemExit(0)\n"
        return Reply.text(f"```python\n{code}```")

    with FakeOpenAI(exit_zero) as server:
        summary = run_suite(warehouse, "humaneval", runner(server, None), limit=2)
    assert (summary.score, summary.errors) == (0.0, 0)
    details = {r["detail"] for r in results(warehouse, summary.run_id).values()}
    assert details == {"tests failed: the program ended before check() returned"}


def test_an_output_with_lone_surrogates_is_stored_not_lost(warehouse: Warehouse) -> None:
    def surrogate(body: dict[str, Any], seen: int) -> Reply:
        return Reply.text(f"\ud800 **Answer:** {math_item(body)['answer']} \udfff")

    with FakeOpenAI(surrogate) as server:
        summary = run_suite(warehouse, "math_heldout", runner(server, None), limit=2)
    assert (summary.items, summary.score, summary.errors) == (2, 1.0, 0)
    outputs = [r["output"] for r in results(warehouse, summary.run_id).values()]
    assert all(o.startswith("? **Answer:**") for o in outputs)


def test_results_written_before_checkpoint_ids_gain_the_column_on_the_next_run(
    warehouse: Warehouse,
) -> None:
    from posttrain.platform.schemas import EVAL_RESULTS

    old = EVAL_RESULTS.remove(EVAL_RESULTS.get_field_index("checkpoint_id"))
    warehouse.catalog.create_namespace_if_not_exists("eval")
    warehouse.catalog.create_table(RESULTS, schema=old)
    with FakeOpenAI(lambda body, seen: Reply.text("**Answer:** 0")) as server:
        made = runner(server, None)
        summary = run_suite(warehouse, "math_heldout", made, limit=2, checkpoint_id="exp-step2")
    rows = results(warehouse, summary.run_id)
    assert len(rows) == 2
    assert {row["checkpoint_id"] for row in rows.values()} == {"exp-step2"}
