"""`posttrain verify --prompt-id ID --completion FILE` prints the reward and why."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from posttrain.cli import app
from posttrain.platform.errors import InputFormatError
from posttrain.platform.lineage import Lineage
from posttrain.platform.messages import make_message
from posttrain.platform.rl.rewards import UnknownPromptError
from posttrain.platform.schemas import GOLD_RL_PROMPTS, TableName
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    rows = [
        {
            "prompt_id": "math:1",
            "prompt": [make_message("user", "What is 72 + 2?")],
            "verifier_kind": "numeric",
            "verifier_spec": '{"answer": 74}',
            "reference": "**Answer:** 74",
        },
        {
            "prompt_id": "code:add",
            "prompt": [make_message("user", "Write add(a, b).")],
            "verifier_kind": "python_tests",
            "verifier_spec": '{"tests": "def check(f):\\n    assert f(2, 3) == 5", '
            '"entry_point": "add", "timeout_s": 3}',
            "reference": "def add(a, b):\n    return a + b\n",
        },
    ]
    Warehouse(WarehouseSettings.local(tmp_path)).append(
        TableName.GOLD_RL_PROMPTS,
        pa.Table.from_pylist(rows, schema=GOLD_RL_PROMPTS),
        Lineage("test"),
    )
    return tmp_path


def _verify(home: Path, prompt_id: str, completion: Path) -> tuple[int, str]:
    args = ["verify", "--prompt-id", prompt_id, "--completion", str(completion)]
    result = runner.invoke(app, [*args, "--home", str(home)])
    return result.exit_code, " ".join(result.output.split())


def test_a_passing_completion_prints_reward_one_and_exits_zero(home: Path, tmp_path: Path) -> None:
    completion = tmp_path / "answer.txt"
    completion.write_text("72 + 2 = 74, so the answer is 74.")
    assert _verify(home, "math:1", completion) == (0, "reward 1 74 matches 74")


def test_a_failing_completion_prints_reward_zero_and_why(home: Path, tmp_path: Path) -> None:
    completion = tmp_path / "answer.txt"
    completion.write_text("Answer: 75")
    assert _verify(home, "math:1", completion) == (1, "reward 0 75 ≠ expected 74 (rel_tol 1e-06)")


def test_code_runs_in_the_sandbox(home: Path, tmp_path: Path) -> None:
    completion = tmp_path / "add.py"
    completion.write_text("```python\ndef add(a, b):\n    while True:\n        pass\n```")
    code, output = _verify(home, "code:add", completion)
    assert code == 1
    assert output == "reward 0 tests failed: timed out after 3 s (wall-time limit)"


def test_an_unknown_prompt_id_is_an_error_naming_it(home: Path, tmp_path: Path) -> None:
    completion = tmp_path / "answer.txt"
    completion.write_text("74")
    args = ["verify", "--prompt-id", "math:404", "--completion", str(completion)]
    result = runner.invoke(app, [*args, "--home", str(home)])
    assert isinstance(result.exception, UnknownPromptError)
    assert str(result.exception) == "prompt id 'math:404' is not in gold.rl_prompts"


def test_a_missing_completion_file_is_an_error_naming_it(home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    args = ["verify", "--prompt-id", "math:1", "--completion", str(missing)]
    result = runner.invoke(app, [*args, "--home", str(home)])
    assert isinstance(result.exception, InputFormatError)
    assert str(result.exception).startswith(f"{missing}: expected a readable UTF-8 text file")


def test_the_completion_can_come_from_standard_input(home: Path) -> None:
    args = ["verify", "--prompt-id", "math:1", "--completion", "-", "--home", str(home)]
    result = runner.invoke(app, args, input="\\boxed{74}")
    assert result.exit_code == 0 and "74 matches 74" in result.output
