"""Experiment files: every kind of mistake is reported with its key and its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from experiment_data import ExperimentWriter

from posttrain.platform.errors import ConfigError
from posttrain.platform.experiments.config import (
    ExperimentConfigError,
    load_experiment,
    parse_experiment,
)
from posttrain.platform.settings import project_root

GOOD = """
name: ok
model:
  base: tiny
  tokenizer: posttrain-chat-8k
data:
  sources:
    - ref: gold.sft@v3
      weight: 0.7
    - snapshot: agent-pos
      weight: 0.3
trainer:
  kind: sft
  settings:
    max_steps: 2
evals: [humaneval]
"""


def _problems(write: ExperimentWriter, text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(ExperimentConfigError) as caught:
        load_experiment(write("x.yaml", text))
    return [(p.key, p.line, p.message) for p in caught.value.problems]


def test_a_good_file_parses_with_a_filtered_snapshot_as_its_table_at_its_tag(
    write_experiment: ExperimentWriter,
) -> None:
    parsed = load_experiment(write_experiment("ok.yaml", GOOD))
    refs = [source.table_ref() for source in parsed.config.data.sources]
    assert refs == ["gold.sft@v3", "snapshots.agent_pos@agent-pos"]
    assert parsed.config.columns == ("messages",)


def test_an_unknown_key_is_named_with_its_line(write_experiment: ExperimentWriter) -> None:
    text = GOOD.replace("data:\n", "data:\n  seq_len: 512\n")
    ((key, line, message),) = _problems(write_experiment, text)
    assert (key, line) == ("data.seq_len", 6)
    assert "unknown key 'seq_len'" in message


def test_a_wrong_type_is_named_with_its_line(write_experiment: ExperimentWriter) -> None:
    text = GOOD.replace("weight: 0.3", "weight: lots")
    ((key, line, message),) = _problems(write_experiment, text)
    assert (key, line) == ("data.sources[1].weight", 10)
    assert "'lots'" in message


def test_weights_that_do_not_sum_to_one_are_refused_at_the_sources(
    write_experiment: ExperimentWriter,
) -> None:
    text = GOOD.replace("weight: 0.3", "weight: 0.5")
    ((key, line, message),) = _problems(write_experiment, text)
    assert (key, line) == ("data.sources", 6)
    assert "sum to 1" in message and "0.7 + 0.5 = 1.2" in message


def test_a_source_with_both_ref_and_snapshot_is_refused(write_experiment: ExperimentWriter) -> None:
    text = GOOD.replace("- snapshot: agent-pos", "- snapshot: agent-pos\n      ref: gold.dpo")
    ((key, line, message),) = _problems(write_experiment, text)
    assert (key, line) == ("data.sources[1]", 9)
    assert "exactly one of" in message


def test_a_missing_key_points_at_its_parent(write_experiment: ExperimentWriter) -> None:
    text = GOOD.replace("  kind: sft\n", "")
    ((key, line, message),) = _problems(write_experiment, text)
    assert (key, line) == ("trainer.kind", 11)
    assert message == "required key is missing"


def test_a_trainer_setting_the_trainer_does_not_have_is_named_with_its_line(
    write_experiment: ExperimentWriter,
) -> None:
    pytest.importorskip("trl")
    text = GOOD.replace("max_steps: 2", "max_steps: 2\n    num_generations: 4\n    learnin_rate: 1")
    problems = _problems(write_experiment, text)
    assert [(k, line) for k, line, _ in problems] == [
        ("trainer.settings.num_generations", 15),
        ("trainer.settings.learnin_rate", 16),
    ]
    assert "SFTConfig (sft) has no setting 'num_generations'" in problems[0][2]
    assert "did you mean learning_rate" in problems[1][2]


def test_the_same_setting_is_accepted_by_the_trainer_that_has_it(
    write_experiment: ExperimentWriter,
) -> None:
    pytest.importorskip("trl")
    text = GOOD.replace("kind: sft", "kind: grpo").replace("max_steps: 2", "num_generations: 4")
    text = text.replace("    - snapshot: agent-pos\n      weight: 0.3\n", "").replace(
        "weight: 0.7", "weight: 1"
    )
    assert load_experiment(write_experiment("g.yaml", text)).config.trainer.kind == "grpo"


def test_a_trainer_setting_of_the_wrong_type_is_named_with_its_line(
    write_experiment: ExperimentWriter,
) -> None:
    pytest.importorskip("trl")
    text = GOOD.replace("max_steps: 2", "max_steps: two")
    ((key, line, message),) = _problems(write_experiment, text)
    assert (key, line) == ("trainer.settings.max_steps", 14)
    assert "'two'" in message


def test_a_setting_the_experiment_owns_points_at_the_key_that_decides(
    write_experiment: ExperimentWriter,
) -> None:
    pytest.importorskip("trl")
    text = GOOD.replace("max_steps: 2", "max_length: 64")
    ((key, line, message),) = _problems(write_experiment, text)
    assert (key, line) == ("trainer.settings.max_length", 14)
    assert "data.seq_length" in message


def test_an_unknown_eval_suite_is_named_with_its_line(write_experiment: ExperimentWriter) -> None:
    text = GOOD.replace("evals: [humaneval]", "evals:\n  - humaneval\n  - mmlu-pro")
    ((key, line, message),) = _problems(write_experiment, text)
    assert (key, line) == ("evals[1]", 17)
    assert "unknown eval suite 'mmlu-pro'" in message and "humaneval" in message


def test_a_benchmark_without_a_scorer_is_not_an_eval_suite(
    write_experiment: ExperimentWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Registered for decontamination only: nothing could score it after the training.
    from dataclasses import replace

    from posttrain.platform.evals import registry

    humaneval = registry.BENCHMARKS["humaneval"]
    monkeypatch.setitem(registry.BENCHMARKS, "plain", replace(humaneval, name="plain"))
    text = GOOD.replace("evals: [humaneval]", "evals: [humaneval, eval.humaneval, plain]")
    ((key, _, message),) = _problems(write_experiment, text)
    assert key == "evals[2]" and "unknown eval suite 'plain'" in message


def test_every_problem_is_reported_at_once(write_experiment: ExperimentWriter) -> None:
    text = GOOD.replace("name: ok", "name: ok\nnmae: typo").replace("weight: 0.3", "weight: -1")
    with pytest.raises(ExperimentConfigError) as caught:
        load_experiment(write_experiment("x.yaml", text))
    message = str(caught.value)
    assert "x.yaml, line 2, nmae: unknown key" in message
    assert "line 11, data.sources[1].weight" in message


def test_text_that_is_not_yaml_names_the_line_where_parsing_stopped() -> None:
    with pytest.raises(ExperimentConfigError) as caught:
        parse_experiment("name: x\nmodel: [unclosed\ndata: {}\n", "bad.yaml")
    (problem,) = caught.value.problems
    assert problem.line == 3 and "not YAML" in problem.message


def test_a_yaml_list_instead_of_a_mapping_is_refused() -> None:
    with pytest.raises(ExperimentConfigError, match="expected a mapping of keys"):
        parse_experiment("- name: x\n", "list.yaml")


def test_a_comment_or_layout_change_keeps_the_config_hash() -> None:
    first = parse_experiment(GOOD, "a.yaml").config
    reordered = GOOD.replace(
        "model:\n  base: tiny\n  tokenizer: posttrain-chat-8k\n",
        "model: {tokenizer: posttrain-chat-8k, base: tiny}  # flow style, keys swapped\n",
    )
    second = parse_experiment("# a comment\n" + reordered, "b.yaml").config
    assert first.config_hash() == second.config_hash()


@pytest.mark.parametrize("name", ["sft-tiny.yaml", "dpo-tiny.yaml", "grpo-tiny.yaml"])
def test_the_shipped_examples_validate(name: str) -> None:
    pytest.importorskip("trl")
    path = project_root() / "experiments" / name
    assert load_experiment(path).config.name == Path(name).stem


def test_a_key_given_twice_is_refused_with_both_lines() -> None:
    with pytest.raises(ExperimentConfigError) as caught:
        parse_experiment(GOOD.lstrip() + "seed: 1\nseed: 2\n", "twice.yaml")
    (problem,) = caught.value.problems
    assert (problem.key, problem.line) == ("seed", 17)
    assert "first on line 16" in problem.message


def test_a_local_model_path_that_is_not_there_is_named_with_its_line(
    write_experiment: ExperimentWriter,
) -> None:
    text = GOOD.replace("base: tiny", "base: ./no/such/checkpoint")
    ((key, line, message),) = _problems(write_experiment, text)
    assert (key, line) == ("model.base", 3)
    assert "no such local path" in message


def test_a_hub_id_is_not_taken_for_a_missing_path(write_experiment: ExperimentWriter) -> None:
    text = GOOD.replace("base: tiny", "base: Qwen/Qwen2.5-0.5B")
    assert load_experiment(write_experiment("hub.yaml", text)).config.model.base.startswith("Qwen")


def test_a_name_that_could_leave_the_checkpoint_folder_is_refused(
    write_experiment: ExperimentWriter,
) -> None:
    ((key, line, _),) = _problems(write_experiment, GOOD.replace("name: ok", "name: ../../etc"))
    assert (key, line) == ("name", 1)


def test_a_file_that_is_not_utf8_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(GOOD.replace("ok", "caf\xe9").encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yaml: not UTF-8 text"):
        load_experiment(path)


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "\n".join(levels) + "\nname: bomb\n"
    with pytest.raises(ExperimentConfigError, match=r"line 2, a1\[0\]: YAML aliases"):
        parse_experiment(text, "bomb.yaml")


def test_packing_for_a_trainer_that_does_not_pack_is_named_with_its_line(
    write_experiment: ExperimentWriter,
) -> None:
    text = GOOD.replace("kind: sft", "kind: dpo").replace("data:\n", "data:\n  packing: true\n")
    problems = [(key, line) for key, line, _ in _problems(write_experiment, text)]
    assert ("data.packing", 6) in problems
