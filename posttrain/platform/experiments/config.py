"""Experiment files (``experiments/NAME.yaml``): a typed schema, and errors that name the key
and the line.

An experiment is the model to start from, the corpora to blend (each a table reference or a
filtered snapshot, with a weight), sequence length and packing, the trainer (TRL's SFT, DPO
or GRPO) and its settings, the eval suites to run on the checkpoint, and a seed::

    name: sft-tiny
    seed: 0
    model:
      base: tiny                  # a tiny Qwen2 built from `tiny:`; or a local path or hub id
      tokenizer: posttrain-chat-8k
    data:
      sources:
        - {ref: gold.sft@v3, weight: 0.7}
        - {snapshot: agent-pos, weight: 0.3}   # `posttrain snapshot ... --as agent-pos`
      seq_length: 512
      packing: false
    trainer:
      kind: sft
      settings: {max_steps: 2, per_device_train_batch_size: 2}
    evals: [humaneval]

:func:`load_experiment` reads and checks a file on its own (keys, types, weights, trainer
settings against TRL's ``SFTConfig``/``DPOConfig``/``GRPOConfig``, eval suite names);
tables and versions are checked against a warehouse by
:func:`posttrain.platform.experiments.plan.plan_experiment`. Every problem is reported with
its file, line and dotted key, all at once.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import ConfigError

TINY = "tiny"
WEIGHT_TOLERANCE = 1e-6


class TrainerKind(StrEnum):
    """Which TRL trainer runs the experiment."""

    SFT = "sft"
    DPO = "dpo"
    GRPO = "grpo"


# The columns each trainer reads from the blend, unless the file names them.
DEFAULT_COLUMNS: dict[TrainerKind, tuple[str, ...]] = {
    TrainerKind.SFT: ("messages",),
    TrainerKind.DPO: ("prompt", "chosen", "rejected"),
    # TRL passes every column but the prompt to the reward function: prompt_id names the
    # verifier of each completion.
    TrainerKind.GRPO: ("prompt_id", "prompt"),
}

# Trainer settings the experiment owns: setting them under ``trainer.settings`` would make
# two places disagree, so the error names the key that decides instead.
RESERVED_SETTINGS: dict[str, str] = {
    "output_dir": "the launch chooses it (the checkpoint is registered in lineage.checkpoints)",
    "seed": "use the top-level `seed`",
    "data_seed": "use the top-level `seed`",
    "max_length": "use `data.seq_length`",
    "packing": "use `data.packing`",
}


class TinyModel(FrozenConfig):
    """A randomly initialized Qwen2 built from a config: no download, trains on a CPU."""

    hidden_size: int = Field(default=32, gt=0)
    intermediate_size: int = Field(default=64, gt=0)
    layers: int = Field(default=2, gt=0)
    heads: int = Field(default=2, gt=0)
    kv_heads: int = Field(default=1, gt=0)


class ModelConfig(FrozenConfig):
    """The model to start from and its tokenizer."""

    base: str = Field(description="`tiny`, a local checkpoint folder or a Hugging Face hub id.")
    tokenizer: str | None = Field(
        default=None,
        description="Tokenizer path, hub id or shipped name (default: the base model's).",
    )
    tiny: TinyModel | None = None

    @model_validator(mode="after")
    def _tiny_needs_a_tokenizer(self) -> ModelConfig:
        if self.base == TINY and self.tokenizer is None:
            raise ValueError("a tiny model needs a `tokenizer` (e.g. posttrain-chat-8k)")
        if self.tiny is not None and self.base != TINY:
            raise ValueError(f"`tiny` settings apply only to `base: {TINY}`")
        return self

    @property
    def tokenizer_name(self) -> str:
        return self.tokenizer or self.base


class SourceConfig(FrozenConfig):
    """One corpus of the blend: a table reference or a filtered snapshot, and its weight."""

    ref: str | None = Field(
        default=None,
        description="TABLE[@REF]: gold.sft@v3, gold.sft@<snapshot id>, a tag or branch.",
    )
    snapshot: str | None = Field(
        default=None, description="A filtered snapshot's name (`posttrain snapshot ... --as NAME`)."
    )
    weight: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _one_of_ref_or_snapshot(self) -> SourceConfig:
        if (self.ref is None) == (self.snapshot is None):
            raise ValueError("give exactly one of `ref` (TABLE@REF) or `snapshot` (a name)")
        return self

    def table_ref(self) -> str:
        """The ``TABLE@REF`` this source names (a filtered snapshot is its table at its tag)."""
        if self.ref is not None:
            return self.ref
        from posttrain.platform.outcomes.snapshot import table_for

        assert self.snapshot is not None
        return f"{table_for(self.snapshot)}@{self.snapshot}"


class DataConfig(FrozenConfig):
    """What the trainer reads: a weighted, seeded blend of corpora."""

    sources: list[SourceConfig] = Field(min_length=1)
    columns: list[str] | None = Field(
        default=None, description="Columns to read (default: what the trainer kind needs)."
    )
    seq_length: int = Field(default=1024, gt=0)
    packing: bool = False
    max_examples: int | None = Field(
        default=None, gt=0, description="Stop the stream after this many examples (tiny runs)."
    )
    exhausted: Literal["drop", "stop", "cycle"] = Field(
        "drop",
        description="When a source runs out: drop it (one pass over everything), stop the "
        "stream, or cycle it (bound the run with max_steps).",
    )

    @field_validator("sources")
    @classmethod
    def _weights_sum_to_one(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        total = math.fsum(source.weight for source in sources)
        if len(sources) > 1 and abs(total - 1.0) > WEIGHT_TOLERANCE:
            weights = " + ".join(f"{s.weight:g}" for s in sources)
            raise ValueError(f"blend weights must sum to 1, found {weights} = {total:g}")
        return sources


class TrainerConfig(FrozenConfig):
    """The TRL trainer and its settings (fields of its ``SFTConfig``/``DPOConfig``/...)."""

    kind: TrainerKind
    settings: dict[str, Any] = Field(default_factory=dict)


class ExperimentConfig(FrozenConfig):
    """One experiment file."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    description: str = ""
    seed: int = 0
    model: ModelConfig
    data: DataConfig
    trainer: TrainerConfig
    evals: list[str] = Field(default_factory=list)
    eval_limit: int | None = Field(
        default=None, gt=0, description="Score only the first N items of each suite."
    )
    eval_max_tokens: int | None = Field(
        default=None,
        ge=1,
        le=65_536,
        description="Output token limit per eval item (default: the eval runner's, 512).",
    )

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the blend reads."""
        if self.data.columns:
            return tuple(self.data.columns)
        return DEFAULT_COLUMNS[self.trainer.kind]


# -- errors that name the line ------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with an experiment file."""

    key: str
    line: int | None
    message: str

    def describe(self, path: str) -> str:
        where = f"{path}, line {self.line}" if self.line is not None else path
        return f"{where}, {self.key or '(top)'}: {self.message}"


class ExperimentConfigError(ConfigError):
    """An experiment file is invalid; every problem is listed with its line and key."""

    def __init__(self, path: str | Path, problems: list[Problem]) -> None:
        self.path = str(path)
        self.problems = problems
        super().__init__("\n".join(problem.describe(self.path) for problem in problems))


Loc = tuple[str | int, ...]


def dotted(loc: Loc) -> str:
    """``("data", "sources", 1, "weight")`` → ``data.sources[1].weight``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


@dataclasses.dataclass(frozen=True)
class ExperimentFile:
    """An experiment file's text, its parsed config and where each key sits."""

    path: Path
    text: str
    config: ExperimentConfig
    lines: Mapping[Loc, int]

    def line(self, loc: Loc) -> int | None:
        """The line of ``loc``, or of its nearest enclosing key."""
        return _line_of(self.lines, loc)

    def problem(self, loc: Loc, message: str) -> Problem:
        return Problem(dotted(loc), self.line(loc), message)


def _line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    while True:
        if loc in lines:
            return lines[loc]
        if not loc:
            return None
        loc = loc[:-1]


def _key_lines(
    node: Any, loc: Loc, lines: dict[Loc, int], duplicates: list[Problem], seen: set[int]
) -> None:
    import yaml

    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.CollectionNode):
        if id(node) in seen:
            # An alias (*name) re-uses a node: nested aliases expand exponentially (a
            # "billion laughs" file), and no experiment needs them.
            raise ExperimentConfigError(
                "",
                # The alias carries its anchor's position: name the line of its parent.
                [Problem(dotted(loc), _line_of(lines, loc[:-1]), "YAML aliases are not allowed")],
            )
        seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*loc, str(key_node.value))
            line = key_node.start_mark.line + 1
            if key in lines:
                # YAML keeps the last of two equal keys without a word: refuse instead.
                duplicates.append(
                    Problem(dotted(key), line, f"duplicate key (first on line {lines[key]})")
                )
                continue
            lines[key] = line
            _key_lines(value_node, key, lines, duplicates, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _key_lines(item, (*loc, index), lines, duplicates, seen)


def parse_yaml(text: str, path: str | Path) -> tuple[Any, dict[Loc, int]]:
    """The YAML document and the line of every key and list item in it.

    Raises:
        ExperimentConfigError: not YAML (with the line where the parser stopped).
    """
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ExperimentConfigError(path, [Problem("", line, f"not YAML: {problem}")]) from None
    lines: dict[Loc, int] = {}
    duplicates: list[Problem] = []
    if node is not None:
        try:
            _key_lines(node, (), lines, duplicates, set())
        except ExperimentConfigError as exc:
            raise ExperimentConfigError(path, exc.problems) from None
    if duplicates:
        raise ExperimentConfigError(path, duplicates)
    return yaml.safe_load(text), lines


def _pydantic_problem(error: Any, lines: Mapping[Loc, int]) -> Problem:
    # Model validators report at the model's location; keep only string/int parts.
    loc: Loc = tuple(part for part in error["loc"] if isinstance(part, str | int))
    kind = error["type"]
    if kind == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
    elif kind == "missing":
        message = "required key is missing"
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        if "input" in error and kind not in ("value_error", "assertion_error"):
            message += f", found {error['input']!r}"
    return Problem(dotted(loc), _line_of(lines, loc), message)


def parse_experiment(text: str, path: str | Path = "<experiment>") -> ExperimentFile:
    """Parse and check an experiment file's text (no warehouse needed, no TRL import).

    Raises:
        ExperimentConfigError: every problem found, each with its line and key.
    """
    data, lines = parse_yaml(text, path)
    if not isinstance(data, dict):
        raise ExperimentConfigError(path, [Problem("", 1, "expected a mapping of keys")])
    try:
        config = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        problems = [_pydantic_problem(error, lines) for error in exc.errors()]
        raise ExperimentConfigError(path, problems) from None
    return ExperimentFile(Path(path), text, config, lines)


def load_experiment(path: str | Path, *, check_trainer: bool = True) -> ExperimentFile:
    """Read an experiment file and check everything that needs no warehouse: keys, types,
    weights, eval suite names and (``check_trainer``, when TRL is installed) the trainer
    settings against the trainer's config class.

    Raises:
        ExperimentConfigError: the problems, each with file, line and key.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the experiment file: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
    parsed = parse_experiment(text, path)
    problems = model_problems(parsed) + data_problems(parsed) + eval_problems(parsed)
    if check_trainer:
        problems += trainer_problems(parsed)
    if problems:
        raise ExperimentConfigError(path, problems)
    return parsed


def model_problems(parsed: ExperimentFile) -> list[Problem]:
    """A base model or tokenizer written as a local path (``/``, ``./``, ``../``, ``~``)
    that is not there; hub ids are checked when the launch loads them."""
    model = parsed.config.model
    problems = []
    for key, value in (("base", model.base), ("tokenizer", model.tokenizer)):
        if value is None or not value.startswith(("/", "./", "../", "~")):
            continue
        if not Path(value).expanduser().exists():
            problems.append(parsed.problem(("model", key), f"no such local path {value!r}"))
    return problems


def data_problems(parsed: ExperimentFile) -> list[Problem]:
    """Data settings the trainer kind cannot use (TRL packs only for SFT)."""
    config = parsed.config
    if config.data.packing and config.trainer.kind != TrainerKind.SFT:
        return [parsed.problem(("data", "packing"), f"{config.trainer.kind} does not pack")]
    return []


def eval_problems(parsed: ExperimentFile) -> list[Problem]:
    """Eval suites the evals registry does not know."""
    from posttrain.platform.experiments.evals import known_suites

    known = known_suites()
    return [
        parsed.problem(("evals", index), f"unknown eval suite {name!r}; known: {sorted(known)}")
        for index, name in enumerate(parsed.config.evals)
        if name not in known
    ]


def trainer_args_class(kind: TrainerKind) -> type[Any]:
    """TRL's config class of a trainer kind (imports TRL)."""
    import trl

    classes = {
        TrainerKind.SFT: trl.SFTConfig,  # type: ignore[attr-defined]
        TrainerKind.DPO: trl.DPOConfig,  # type: ignore[attr-defined]
        TrainerKind.GRPO: trl.GRPOConfig,  # type: ignore[attr-defined]
    }
    return classes[kind]


def _setting_types(args_class: type[Any]) -> tuple[set[str], dict[str, Any]]:
    names = {f.name for f in dataclasses.fields(args_class) if f.init}
    try:
        hints = typing.get_type_hints(args_class)
    except Exception:  # an annotation TRL's module cannot resolve: check names only
        hints = {}
    return names, hints


def _coerce(hint: Any, value: Any) -> Any:
    """``value`` as the field's type (YAML reads ``1e-3`` as a string), or ValidationError."""
    from pydantic import TypeAdapter

    try:
        adapter = TypeAdapter(hint)
    except Exception:  # a type pydantic cannot build a validator for: taken as it is
        return value
    return adapter.validate_python(value)


def trainer_problems(parsed: ExperimentFile) -> list[Problem]:
    """Trainer settings the trainer does not have, or of the wrong type, checked against
    the fields of TRL's config class. Without TRL installed, nothing is checked."""
    try:
        args_class = trainer_args_class(parsed.config.trainer.kind)
    except ImportError:
        return []
    names, hints = _setting_types(args_class)
    kind = parsed.config.trainer.kind
    problems = []
    for name, value in parsed.config.trainer.settings.items():
        loc: Loc = ("trainer", "settings", name)
        if name in RESERVED_SETTINGS:
            problems.append(
                parsed.problem(loc, f"set by the experiment: {RESERVED_SETTINGS[name]}")
            )
        elif name not in names:
            close = _close_matches(name, names)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            problems.append(
                parsed.problem(loc, f"{args_class.__name__} ({kind}) has no setting {name!r}{hint}")
            )
        elif name in hints:
            try:
                _coerce(hints[name], value)
            except ValidationError:
                expected = str(getattr(hints[name], "__name__", None) or hints[name])
                problems.append(
                    parsed.problem(
                        loc, f"expected {expected.replace('typing.', '')}, found {value!r}"
                    )
                )
    return problems


def trainer_settings(kind: TrainerKind, settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` converted to the types of TRL's config class fields (call after
    :func:`trainer_problems` found nothing)."""
    _, hints = _setting_types(trainer_args_class(kind))
    return {
        name: _coerce(hints[name], value) if name in hints else value
        for name, value in settings.items()
    }


def _close_matches(name: str, names: set[str]) -> list[str]:
    import difflib

    return difflib.get_close_matches(name, sorted(names), n=3, cutoff=0.75)
