"""The reward function TRL calls scores each completion with its prompt's verifier."""

from __future__ import annotations

import pytest

from posttrain.platform.errors import PosttrainError
from posttrain.platform.rl.build import RlPromptsConfig, build_rl_prompts
from posttrain.platform.rl.rewards import UnknownPromptError, reward_function
from posttrain.platform.warehouse import Warehouse


@pytest.fixture
def built(rl_inputs: Warehouse) -> Warehouse:
    build_rl_prompts(rl_inputs, RlPromptsConfig(humaneval=False))
    return rl_inputs


def test_rewards_follow_the_prompt_id_column_trl_passes_as_kwargs(built: Warehouse) -> None:
    reward = reward_function(built)
    prompts = [[{"role": "user", "content": "?"}]] * 3
    completions = [
        [{"role": "assistant", "content": "So the mean is 64.25."}],
        [{"role": "assistant", "content": "**Answer:** about 108.5 km/h"}],
        [{"role": "assistant", "content": "Answer: 5 h"}],
    ]
    prompt_id = ["math-tutor:m-mean", "math-tutor:m-speed", "math-tutor:m-time"]
    assert reward(prompts, completions, prompt_id=prompt_id) == [1.0, 1.0, 0.0]


def test_plain_string_completions_are_scored_too(built: Warehouse) -> None:
    reward = reward_function(built)
    assert reward(["?"], ["64.25"], prompt_id=["math-tutor:m-mean"]) == [1.0]


def test_a_missing_prompt_id_column_is_an_error_not_a_zero_reward(built: Warehouse) -> None:
    with pytest.raises(PosttrainError, match="needs the prompt_id column"):
        reward_function(built)(["?"], ["1"])


def test_an_unknown_prompt_id_is_an_error(built: Warehouse) -> None:
    with pytest.raises(UnknownPromptError, match=r"'nope' is not in gold\.rl_prompts"):
        reward_function(built)(["?"], ["1"], prompt_id=["nope"])


def test_the_function_has_a_name_for_trl_logs(built: Warehouse) -> None:
    assert reward_function(built).__name__ == "posttrain_verifier"
