"""Redaction of secrets and personal data in conversations, counted per kind.

Message contents and tool-call arguments are rewritten with typed placeholders (by
default ``<EMAIL>``, ``<PHONE>``, ``<API_KEY>``, ``<TOKEN>``, ``<PRIVATE_KEY>``); roles,
names and ids are untouched. Redaction never rejects a record: :class:`RedactStep` maps a
batch to a batch of the same rows with a ``redactions`` column (``map<string, int32>``,
kind → count for that record, empty when nothing was found). What each kind matches, and
what it deliberately leaves alone, is described in :mod:`posttrain.platform.silver.detectors`.

Where two detectors match overlapping text, the earliest match wins, then the longest,
then the more specific kind (private key, JWT, API key, bearer token, e-mail, phone), so
a key inside a ``Bearer`` header is counted once.

Example:
    >>> redactor = Redactor()
    >>> redactor.redact("mail bob@corp.com or call +1 415-555-2671")
    ('mail <EMAIL> or call <PHONE>', {'email': 1, 'phone': 1})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import field_validator, model_validator

from posttrain.platform.config import FrozenConfig
from posttrain.platform.messages import Message
from posttrain.platform.schemas import REDACTION_COUNTS_TYPE
from posttrain.platform.silver._columns import MESSAGES_COLUMN, as_table, require_messages
from posttrain.platform.silver.detectors import (
    SECRET_DETECTORS,
    Detector,
    EmailDetector,
    PhoneDetector,
    RedactionKind,
    Span,
)
from posttrain.platform.steps import StepResult, empty_rejections

REDACTIONS_COLUMN = "redactions"

RedactionCounts = dict[str, int]
"""Kind value → number of redactions, in :class:`RedactionKind` order; no zero entries."""


class RedactionConfig(FrozenConfig):
    """What :class:`RedactStep` redacts and what it writes instead."""

    kinds: tuple[RedactionKind, ...] = tuple(RedactionKind)
    """The kinds to redact; the others are left in the text."""

    placeholder: str = "<{KIND}>"
    """Replacement text; ``{KIND}`` is the upper-case kind (``<API_KEY>``), ``{kind}`` the
    lower-case one. Changing it changes the bytes of silver, so keep it stable."""

    phone_regions: tuple[str, ...] = ("US", "CA", "GB", "DE", "FR", "IN", "AU")
    """Regions (ISO 3166 codes) whose national formats are recognised; international
    ``+<country code>`` numbers are recognised everywhere. Each region widens recall and
    the room for a false positive, so list only where the data comes from."""

    keep_reserved_email_domains: bool = True
    """Leave addresses at ``example.com``, ``*.test``, ``*.invalid``, ``*.localhost`` (RFC
    2606/6761): they belong to no one and fill code samples that should stay intact."""

    @field_validator("phone_regions")
    @classmethod
    def _regions_are_known(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(regions) - phonenumbers.SUPPORTED_REGIONS)
        if unknown:
            raise ValueError(f"unknown phone regions {unknown}; expected ISO codes such as 'US'")
        return regions

    @model_validator(mode="after")
    def _placeholders_are_inert(self) -> RedactionConfig:
        detectors = build_detectors(self)
        for kind in self.kinds:
            try:
                text = self.placeholder_for(kind)
            except (KeyError, IndexError, ValueError) as error:
                raise ValueError(
                    f"placeholder {self.placeholder!r} is not a format with only {{kind}} "
                    f"and {{KIND}} fields: {error!r}"
                ) from error
            found = find_spans(detectors, text)
            if not text or found:
                why = f"it would itself be redacted as {found[0].kind}" if found else "it is empty"
                raise ValueError(f"placeholder {text!r} for {kind} is unusable: {why}")
        return self

    def placeholder_for(self, kind: RedactionKind) -> str:
        """The replacement text for ``kind``, e.g. ``<EMAIL>``."""
        return self.placeholder.format(kind=kind.value, KIND=kind.value.upper())


def build_detectors(config: RedactionConfig) -> tuple[Detector, ...]:
    """The detectors of the enabled kinds, most specific first (the overlap tie-break)."""
    detectors: list[Detector] = [d for d in SECRET_DETECTORS if d.kind in config.kinds]
    if RedactionKind.EMAIL in config.kinds:
        detectors.append(EmailDetector(config.keep_reserved_email_domains))
    if RedactionKind.PHONE in config.kinds:
        detectors.append(PhoneDetector(config.phone_regions))
    return tuple(detectors)


def find_spans(detectors: Sequence[Detector], text: str) -> list[Span]:
    """Non-overlapping matches of ``detectors`` in ``text``, in order.

    Overlaps go to the earliest match, then the longest, then the detector listed first.
    """
    candidates: list[tuple[int, int, int, Span]] = []
    for priority, detector in enumerate(detectors):
        for span in detector.find(text):
            candidates.append((span.start, span.start - span.end, priority, span))
    candidates.sort()
    spans: list[Span] = []
    for *_, span in candidates:
        if not spans or span.start >= spans[-1].end:
            spans.append(span)
    return spans


_KIND_ORDER = {kind.value: index for index, kind in enumerate(RedactionKind)}


def _kind_order(kind: str) -> tuple[int, str]:
    return _KIND_ORDER.get(kind, len(_KIND_ORDER)), kind  # unknown kinds (older runs) last


def _sorted_counts(counts: dict[str, int]) -> RedactionCounts:
    return {kind: counts[kind] for kind in sorted(counts, key=_kind_order)}


class Redactor:
    """Finds and replaces secrets in text; picklable, so Ray workers receive it whole."""

    def __init__(self, config: RedactionConfig | None = None) -> None:
        self.config = config or RedactionConfig()
        self._detectors = build_detectors(self.config)
        self._placeholders = {
            kind.value: self.config.placeholder_for(kind) for kind in self.config.kinds
        }

    @property
    def gate(self) -> str | None:
        """An RE2 pattern every text with a secret matches; ``None`` when no kind is enabled."""
        if not self._detectors:
            return None
        return "|".join(f"(?:{detector.gate})" for detector in self._detectors)

    def find(self, text: str) -> list[Span]:
        """Non-overlapping secrets in ``text``, in order (see the module docstring for ties)."""
        return find_spans(self._detectors, text)

    def redact(self, text: str) -> tuple[str, RedactionCounts]:
        """``text`` with every secret replaced by its placeholder, and counts per kind."""
        spans = self.find(text)
        if not spans:
            return text, {}
        parts: list[str] = []
        counts: dict[str, int] = {}
        cursor = 0
        for start, end, kind in spans:
            parts.append(text[cursor:start])
            parts.append(self._placeholders[kind.value])
            counts[kind.value] = counts.get(kind.value, 0) + 1
            cursor = end
        parts.append(text[cursor:])
        return "".join(parts), _sorted_counts(counts)

    def redact_messages(self, messages: Sequence[Message]) -> tuple[list[Message], RedactionCounts]:
        """Messages with contents and tool-call arguments redacted, and counts per kind.

        Messages without secrets are returned as the same objects.
        """
        counts: dict[str, int] = {}
        redacted: list[Message] = []
        for message in messages:
            redacted.append(message and self._redact_message(message, counts))
        return redacted, _sorted_counts(counts)

    def redact_column(
        self, column: pa.Array | pa.ChunkedArray
    ) -> tuple[pa.Array, list[RedactionCounts]]:
        """A ``MESSAGES_TYPE`` column with every conversation redacted, and counts per row.

        Only the rows the RE2 gate matches are decoded to Python; the others are kept as
        Arrow values.
        """
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        counts: list[RedactionCounts] = [{} for _ in range(len(column))]
        take = np.arange(len(column), dtype=np.int64)
        rows = _rows_matching(column, self.gate)
        changed: list[list[Message]] = []
        for row, messages in zip(rows.tolist(), column.take(rows).to_pylist(), strict=True):
            redacted, counts[row] = self.redact_messages(messages or [])
            if counts[row]:
                take[row] = len(column) + len(changed)
                changed.append(redacted)
        if changed:
            replacement = pa.array(changed, type=column.type)
            column = pa.concat_arrays([column, replacement]).take(pa.array(take))
        return column, counts

    def _redact_text(self, text: str | None, counts: dict[str, int]) -> str | None:
        if not text:
            return text
        new_text, found = self.redact(text)
        for kind, count in found.items():
            counts[kind] = counts.get(kind, 0) + count
        return new_text

    def _redact_message(self, message: Message, counts: dict[str, int]) -> Message:
        before = sum(counts.values())
        content = self._redact_text(message.get("content"), counts)
        calls = []
        for call in message.get("tool_calls") or []:
            function = call.get("function")
            if function and function.get("arguments"):
                arguments = self._redact_text(function["arguments"], counts) or ""
                function = {**function, "arguments": arguments}
            calls.append({**call, "function": function})
        if sum(counts.values()) == before:
            return message
        return {**message, "content": content, "tool_calls": calls}  # type: ignore[typeddict-item]


BatchT = TypeVar("BatchT", pa.RecordBatch, pa.Table)


class RedactStep:
    """Maps a batch to the same rows with redacted ``messages`` and a ``redactions`` column.

    Every other column is kept. A ``redactions`` column already present is added to, and
    placeholders are never redacted again, so a second run only counts what the first
    one left.

    Example:
        >>> from posttrain.platform.messages import make_message
        >>> from posttrain.platform.schemas import MESSAGES_TYPE
        >>> chat = [make_message("user", "key sk-ant-api03-" + "Ab1" * 12),
        ...         make_message("assistant", "Revoke it now.")]
        >>> batch = pa.table({"messages": pa.array([chat], type=MESSAGES_TYPE)})
        >>> out = RedactStep().redact(batch)
        >>> out["messages"][0][0]["content"].as_py(), out["redactions"].to_pylist()
        ('key <API_KEY>', [[('api_key', 1)]])
    """

    name = "redact"

    def __init__(self, config: RedactionConfig | None = None) -> None:
        self.redactor = Redactor(config)

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        """The stage contract: every row kept, redacted; counters ``redactions.<kind>``."""
        redacted = self.redact(as_table(batch))
        counters: dict[str, int] = {}
        for kind, count in _redaction_totals(redacted.column(REDACTIONS_COLUMN)).items():
            counters[f"redactions.{kind}"] = count
        return StepResult(kept=redacted, rejected=empty_rejections(), counters=counters)

    def redact(self, batch: BatchT) -> BatchT:
        """``batch`` with its ``messages`` redacted and the ``redactions`` column set."""
        table = as_table(batch)
        column, counts = self.redactor.redact_column(require_messages(table, self.name))
        if REDACTIONS_COLUMN in table.column_names:
            counts = _add_counts(counts, table.column(REDACTIONS_COLUMN).to_pylist())
        counts_array = pa.array([list(c.items()) for c in counts], type=REDACTION_COUNTS_TYPE)
        return _with_columns(batch, column, counts_array)


def _redaction_totals(column: pa.ChunkedArray) -> dict[str, int]:
    counts = column.combine_chunks()
    if len(counts.keys) == 0:
        return {}
    totals = (
        pa.table({"kind": counts.keys, "n": counts.items})
        .group_by("kind")
        .aggregate([("n", "sum")])
    )
    return dict(zip(totals["kind"].to_pylist(), totals["n_sum"].to_pylist(), strict=True))


def _add_counts(
    counts: list[RedactionCounts], previous: list[list[tuple[str, int]] | None]
) -> list[RedactionCounts]:
    summed = []
    for new, old in zip(counts, previous, strict=True):
        total = dict(new)
        for kind, count in old or []:
            total[kind] = total.get(kind, 0) + count
        summed.append(_sorted_counts(total))
    return summed


def _rows_matching(messages: pa.ListArray, gate: str | None) -> npt.NDArray[np.int64]:
    """Rows with a content or tool-call argument matching ``gate``, found by Arrow (RE2)."""
    if gate is None or len(messages) == 0:
        return np.empty(0, dtype=np.int64)
    flat = pc.list_flatten(messages)
    message_row = pc.list_parent_indices(messages)
    content_hit = pc.match_substring_regex(pc.struct_field(flat, "content"), gate)
    calls = pc.struct_field(flat, "tool_calls")
    arguments = pc.struct_field(pc.list_flatten(calls), ["function", "arguments"])
    call_message = pc.list_parent_indices(calls)
    argument_hit = pc.match_substring_regex(arguments, gate)
    argument_messages = call_message.filter(argument_hit, null_selection_behavior="drop")
    hit_messages = pc.take(message_row, argument_messages)
    hits = pa.concat_arrays([message_row.filter(content_hit), hit_messages])
    return np.unique(hits.to_numpy(zero_copy_only=False)).astype(np.int64)


def _with_columns(batch: BatchT, messages: pa.Array, counts: pa.Array) -> BatchT:
    result = batch.set_column(
        batch.schema.get_field_index(MESSAGES_COLUMN), batch.schema.field(MESSAGES_COLUMN), messages
    )
    field = pa.field(REDACTIONS_COLUMN, REDACTION_COUNTS_TYPE)
    if REDACTIONS_COLUMN in result.schema.names:
        return result.set_column(result.schema.get_field_index(REDACTIONS_COLUMN), field, counts)
    return result.append_column(field, counts)
