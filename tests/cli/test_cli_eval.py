"""`posttrain eval run|compare|suites` against a real local OpenAI-compatible endpoint."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI, Reply, prompt_of

from posttrain.cli import run
from posttrain.platform.evals import load_math_heldout

MATH = load_math_heldout().to_pylist()


def answer(body: dict[str, Any], seen: int) -> Reply:
    item = next(row for row in MATH if row["question"] in prompt_of(body))
    right = body["model"] == "good" or item["item_id"].endswith(("1", "3", "5", "7", "9"))
    return Reply.text(f"**Answer:** {item['answer'] if right else '?'}")


def test_run_then_compare_prints_the_scores_per_model_and_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = ["--home", str(tmp_path)]
    with FakeOpenAI(answer) as server:
        for model, version in (("good", "sft@v1"), ("meh", "sft@v1"), ("meh", "sft@v2")):
            spec = f"openai:{server.base_url}#{model}"
            args = ["eval", "run", "math_heldout", "--model", spec, "--limit", "4"]
            assert run([*args, "--corpus-version", version, *home]) == 0
        out = capsys.readouterr().out
        assert "math_heldout exact_match = 1.000 on 4 items (0 errors, 0 cached)" in out
        assert "math_heldout exact_match = 0.500 on 4 items" in out
        asked = len(server.requests)
        assert run(["eval", "run", "math_heldout", "--model", spec, "--limit", "4", *home]) == 0
        assert len(server.requests) == asked  # the cache under --home answered
        assert "(0 errors, 4 cached)" in capsys.readouterr().out
    assert run(["eval", "compare", "--suite", "math_heldout", *home]) == 0
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if "math_heldout" in line]
    assert len(rows) == 4
    assert "1.000" in rows[0] and "sft@v1" in rows[0] and "#good" in rows[0]
    assert "0.500" in rows[2] and "sft@v2" in rows[2]
    assert run(["eval", "compare", "--by-version", *home]) == 0
    grid = capsys.readouterr().out
    lines = grid.splitlines()

    def cells(marker: str) -> list[str]:
        (line,) = [line for line in lines if marker in line]
        return [cell.strip() for cell in re.split("[│┃]", line)[1:-1]]

    # Columns: suite, metric, model, then the versions in order of their first run; the
    # cached re-run above recorded no version ("-").
    assert cells("┃ suite")[3:] == ["sft@v1", "sft@v2", "-"]
    assert cells("#good")[3:] == ["1.000", "", ""]
    assert cells("#meh")[3:] == ["0.500", "0.500", "0.500"]


def test_a_run_where_every_item_failed_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAI(lambda body, seen: Reply.http(400)) as server:
        args = ["eval", "run", "math_heldout", "--model", f"openai:{server.base_url}#m"]
        assert run([*args, "--limit", "2", "--home", str(tmp_path)]) == 1
    assert "2 items failed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "run", "mmlu", "--model", "openai:http://h/v1#m"], "unknown eval suite 'mmlu'"),
        (["eval", "run", "humaneval", "--model", "gpt-4"], "model spec 'gpt-4'"),
    ],
)
def test_a_bad_suite_or_model_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([*args, "--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_compare_on_an_empty_warehouse_says_how_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["eval", "compare", "--home", str(tmp_path)]) == 0
    assert "no eval runs yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("choice", "message"),
    [
        ([], "give either --model or --checkpoint"),
        (["--model", "openai:http://127.0.0.1:9#m", "--checkpoint", "x"], "give either"),
        (["--checkpoint", "nope"], "no checkpoint 'nope'"),
    ],
)
def test_eval_run_needs_one_model_or_one_known_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], choice: list[str], message: str
) -> None:
    assert run(["eval", "run", "math_heldout", *choice, "--home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
