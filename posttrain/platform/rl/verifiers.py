"""Verifiers stored as data: a ``kind`` and a JSON ``spec``, turned into a reward.

Each kind has a pydantic spec model, so a spec that does not parse fails with the prompt id
and the exact problem, never as a silent zero reward at training time:

- ``exact``: the final answer equals ``answer`` after the listed normalization rules;
- ``numeric``: the number the completion gives equals ``answer`` within tolerances;
- ``regex``: ``pattern`` matches the final answer (or the whole completion);
- ``json_schema``: the completion is JSON valid under ``json_schema``;
- ``python_tests``: ``prefix`` + the completion's code + ``tests`` exits 0 in the sandbox.

Example:
    >>> verifier = parse_verifier("numeric", '{"answer": 74}', prompt_id="math:1")
    >>> verifier.verify("72 + 2 = 74.\\n\\n**Answer:** 74").reward
    1.0
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

from pydantic import Field, ValidationError, field_validator

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import PosttrainError
from posttrain.platform.rl.answers import code_block, final_answer, parse_number
from posttrain.platform.rl.sandbox import SandboxLimits, run_python


class VerifierKind(StrEnum):
    """The kinds of verifier a prompt may carry (``gold.rl_prompts.verifier_kind``)."""

    EXACT = "exact"
    NUMERIC = "numeric"
    REGEX = "regex"
    JSON_SCHEMA = "json_schema"
    PYTHON_TESTS = "python_tests"


class VerifierSpecError(PosttrainError):
    """A verifier's kind or spec is not valid; names the prompt and the problem."""

    def __init__(self, prompt_id: str, kind: str, problem: str) -> None:
        self.prompt_id = prompt_id
        self.kind = kind
        self.problem = problem
        super().__init__(f"prompt {prompt_id!r}: invalid {kind!r} verifier spec: {problem}")


@dataclass(frozen=True)
class VerifierResult:
    """The verdict on one completion."""

    reward: float
    passed: bool
    why: str  # one line, for a person to read

    @classmethod
    def of(cls, passed: bool, why: str) -> VerifierResult:
        return cls(1.0 if passed else 0.0, passed, why)


class Verifier(Protocol):
    """Anything that scores a completion."""

    @property
    def kind(self) -> VerifierKind: ...

    def verify(self, completion: str) -> VerifierResult: ...


Normalization = Literal[
    "casefold", "collapse_whitespace", "strip_markdown", "strip_trailing_punctuation", "no_commas"
]
_DEFAULT_RULES: tuple[Normalization, ...] = (
    "casefold",
    "collapse_whitespace",
    "strip_markdown",
    "strip_trailing_punctuation",
)


def normalize(text: str, rules: tuple[Normalization, ...]) -> str:
    """Apply the normalization ``rules`` in a fixed order (the order listed is irrelevant)."""
    if "strip_markdown" in rules:
        text = re.sub(r"\*\*|__|`|\$\$", "", text)
    if "no_commas" in rules:
        text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    if "casefold" in rules:
        text = text.casefold()
    if "collapse_whitespace" in rules:
        text = " ".join(text.split())
    text = text.strip()
    if "strip_trailing_punctuation" in rules:
        text = text.rstrip(".,;:!? ").strip()
    return text


class ExactSpec(FrozenConfig):
    """The final answer must equal ``answer`` once both are normalized."""

    answer: str = Field(min_length=1)
    normalize: tuple[Normalization, ...] = _DEFAULT_RULES
    target: Literal["final_answer", "whole"] = "final_answer"


class NumericSpec(FrozenConfig):
    """The number the completion gives must equal ``answer`` within the tolerances."""

    answer: float
    rel_tol: float = Field(default=1e-6, ge=0)
    abs_tol: float = Field(default=1e-9, ge=0)

    @field_validator("answer")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("answer must be a finite number")
        return value


_RE2_FLAGS = {"ignorecase": "i", "multiline": "m", "dotall": "s"}


class RegexSpec(FrozenConfig):
    """``pattern`` must match (``search`` anywhere, or ``fullmatch``) the target text.

    Patterns are RE2 (Arrow's regex engine), not Python ``re``: matching is linear in the
    text, so no completion can make a reward hang (``(a+)+$`` on a long run of ``a``
    would backtrack for hours under ``re``) and a reward never depends on a timeout.
    RE2 has no backreferences and no lookarounds; such a pattern is refused when the
    spec is read.

    Example:
        >>> RegexSpec(pattern="(a+)+$").matches("a" * 100_000 + "!")
        False
    """

    pattern: str = Field(min_length=1)
    flags: tuple[Literal["ignorecase", "multiline", "dotall"], ...] = ()
    mode: Literal["search", "fullmatch"] = "search"
    target: Literal["final_answer", "whole"] = "whole"

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            _re2_search(value, "")
        except ValueError as exc:
            raise ValueError(
                f"pattern does not compile as RE2 (no backreferences or lookarounds): {exc}"
            ) from None
        return value

    def re2_pattern(self) -> str:
        """The pattern as run: flags inline, and anchored at both ends for ``fullmatch``."""
        flags = "".join(sorted(_RE2_FLAGS[flag] for flag in self.flags))
        body = rf"\A(?:{self.pattern})\z" if self.mode == "fullmatch" else self.pattern
        return f"(?{flags}){body}" if flags else body

    def matches(self, text: str) -> bool:
        """Whether ``text`` matches, in time linear in its length."""
        return _re2_search(self.re2_pattern(), text)


def _re2_search(pattern: str, text: str) -> bool:
    """RE2 ``search`` through Arrow; :class:`ValueError` for a pattern RE2 refuses."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        return bool(pc.match_substring_regex(pa.array([text], pa.large_string()), pattern)[0])
    except pa.ArrowInvalid as exc:
        raise ValueError(str(exc).removeprefix("Invalid regular expression: ")) from None


class JsonSchemaSpec(FrozenConfig):
    """The completion (or its fenced JSON block) must be JSON valid under ``json_schema``."""

    json_schema: dict[str, Any]

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        import jsonschema

        try:
            jsonschema.validators.validator_for(value).check_schema(value)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON schema: {exc.message}") from None
        return value


class PythonTestsSpec(FrozenConfig):
    """``prefix`` + the completion's code + ``tests`` must exit 0 in the sandbox.

    ``prefix`` is what the prompt showed (imports, signature, docstring), so a completion
    may give either the whole function or only its body. When ``entry_point`` is set, the
    program ends with ``check(entry_point)`` (HumanEval's convention).
    """

    tests: str = Field(min_length=1)
    prefix: str = ""
    entry_point: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    memory_mb: int = Field(default=512, ge=64, le=4096)

    def program(self, completion: str) -> str:
        """The Python program that runs the tests against ``completion``."""
        code = code_block(completion, self.entry_point)
        defines = self.entry_point is not None and re.search(
            rf"^\s*def\s+{re.escape(self.entry_point)}\s*\(", code, re.MULTILINE
        )
        # A whole function goes after the prompt (which it redefines); a body continues it.
        joined = self.prefix + ("\n" if defines or not self.prefix else "") + code
        check = f"\n\ncheck({self.entry_point})\n" if self.entry_point else "\n"
        return joined + "\n\n" + self.tests + check


@dataclass(frozen=True)
class ExactVerifier:
    spec: ExactSpec
    kind: VerifierKind = VerifierKind.EXACT

    def verify(self, completion: str) -> VerifierResult:
        text = final_answer(completion) if self.spec.target == "final_answer" else completion
        given = normalize(text, self.spec.normalize)
        expected = normalize(self.spec.answer, self.spec.normalize)
        if given == expected:
            return VerifierResult.of(True, f"answer {given!r} matches")
        return VerifierResult.of(False, f"answer {_short(given)!r} ≠ expected {expected!r}")


@dataclass(frozen=True)
class NumericVerifier:
    spec: NumericSpec
    kind: VerifierKind = VerifierKind.NUMERIC

    def verify(self, completion: str) -> VerifierResult:
        given = parse_number(completion)
        expected = self.spec.answer
        if given is None:
            return VerifierResult.of(False, "no number found in the completion")
        if math.isclose(given, expected, rel_tol=self.spec.rel_tol, abs_tol=self.spec.abs_tol):
            return VerifierResult.of(True, f"{given:g} matches {expected:g}")
        return VerifierResult.of(
            False, f"{given:g} ≠ expected {expected:g} (rel_tol {self.spec.rel_tol:g})"
        )


@dataclass(frozen=True)
class RegexVerifier:
    spec: RegexSpec
    kind: VerifierKind = VerifierKind.REGEX

    def verify(self, completion: str) -> VerifierResult:
        text = final_answer(completion) if self.spec.target == "final_answer" else completion
        if self.spec.matches(text):
            return VerifierResult.of(True, f"/{self.spec.pattern}/ {self.spec.mode} matched")
        return VerifierResult.of(
            False, f"/{self.spec.pattern}/ does not {self.spec.mode} {_short(text)!r}"
        )


@dataclass(frozen=True)
class JsonSchemaVerifier:
    spec: JsonSchemaSpec
    kind: VerifierKind = VerifierKind.JSON_SCHEMA

    def verify(self, completion: str) -> VerifierResult:
        import jsonschema

        text = code_block(completion).strip()
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            return VerifierResult.of(False, f"not JSON: {exc}")
        validator = jsonschema.validators.validator_for(self.spec.json_schema)(
            self.spec.json_schema
        )
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        if error is None:
            return VerifierResult.of(True, "valid under the schema")
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        return VerifierResult.of(False, f"invalid at {where}: {_short(error.message)}")


@dataclass(frozen=True)
class PythonTestsVerifier:
    spec: PythonTestsSpec
    kind: VerifierKind = VerifierKind.PYTHON_TESTS

    def verify(self, completion: str) -> VerifierResult:
        limits = SandboxLimits(timeout_s=self.spec.timeout_s, memory_mb=self.spec.memory_mb)
        result = run_python(self.spec.program(completion), limits)
        if result.ok:
            return VerifierResult.of(True, f"tests passed in {result.seconds:.2f} s")
        return VerifierResult.of(False, f"tests failed: {result.explain(limits)}")


_SPECS: dict[VerifierKind, type[FrozenConfig]] = {
    VerifierKind.EXACT: ExactSpec,
    VerifierKind.NUMERIC: NumericSpec,
    VerifierKind.REGEX: RegexSpec,
    VerifierKind.JSON_SCHEMA: JsonSchemaSpec,
    VerifierKind.PYTHON_TESTS: PythonTestsSpec,
}


def parse_verifier(kind: str, spec: str, *, prompt_id: str) -> Verifier:
    """Build the verifier a ``gold.rl_prompts`` row describes.

    Raises:
        VerifierSpecError: unknown kind, or a spec that is not JSON or not valid for it.
    """
    if kind not in set(VerifierKind):
        raise VerifierSpecError(prompt_id, kind, f"unknown kind; known: {sorted(VerifierKind)}")
    model = _SPECS[VerifierKind(kind)]
    try:
        parsed = model.model_validate_json(spec)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'spec'}: {error['msg']}"
            for error in exc.errors()
        )
        raise VerifierSpecError(prompt_id, kind, problems) from None
    if isinstance(parsed, ExactSpec):
        return ExactVerifier(parsed)
    if isinstance(parsed, NumericSpec):
        return NumericVerifier(parsed)
    if isinstance(parsed, RegexSpec):
        return RegexVerifier(parsed)
    if isinstance(parsed, JsonSchemaSpec):
        return JsonSchemaVerifier(parsed)
    assert isinstance(parsed, PythonTestsSpec)
    return PythonTestsVerifier(parsed)


def spec_json(spec: FrozenConfig) -> str:
    """The JSON text stored in ``verifier_spec`` (sorted keys: same spec, same bytes)."""
    return spec.canonical_json()


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
