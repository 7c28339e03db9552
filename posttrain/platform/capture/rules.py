"""A workspace's capture rules, applied to an event before anything is written.

Rules refuse a source, drop fields (dotted paths, through lists) and redact texts with the
silver redactors (:class:`~posttrain.platform.silver.redact.Redactor`) and extra regular
expressions. Ids, types, roles and sources are never rewritten: they identify the event.
"""

from __future__ import annotations

import re
from typing import Any

from posttrain.platform.access import CaptureRules
from posttrain.platform.silver.redact import RedactionConfig, Redactor

REDACTED = "<REDACTED>"
# Keys whose string values are identities or structure, never redacted.
_KEEP = frozenset({"id", "type", "role", "source", "session_id", "turn_id", "tool_call_id", "kind"})


class RuleRefusal(ValueError):
    """A rule refused the event; the message is the reason given to the client."""


class CompiledRules:
    """:class:`CaptureRules` ready to apply (redactor and patterns built once)."""

    def __init__(self, rules: CaptureRules) -> None:
        self.rules = rules
        self._refused = frozenset(rules.refuse_sources)
        self._drop = [path.split(".") for path in rules.drop_fields]
        self._redactor = Redactor(RedactionConfig(kinds=rules.redact)) if rules.redact else None
        self._patterns = [re.compile(pattern) for pattern in rules.redact_patterns]
        self.noop = not (self._refused or self._drop or self._redactor or self._patterns)

    def apply(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as it may be written (a new dict when anything changed).

        Raises:
            RuleRefusal: the event's source is refused.
        """
        if self.noop:
            return event
        source = event.get("source", "capture")
        if source in self._refused:
            raise RuleRefusal(f"source {source!r} is refused by this workspace's capture rules")
        for path in self._drop:
            event = _drop(event, path)
        if self._redactor is not None or self._patterns:
            event = self._redact_value(event, None)
        return event

    def _redact_text(self, text: str) -> str:
        if self._redactor is not None:
            text = self._redactor.redact(text)[0]
        for pattern in self._patterns:
            text = pattern.sub(REDACTED, text)
        return text

    def _redact_value(self, value: Any, key: str | None) -> Any:
        if isinstance(value, str):
            return value if key in _KEEP else self._redact_text(value)
        if isinstance(value, list):
            return [self._redact_value(item, key) for item in value]
        if isinstance(value, dict):
            return {k: self._redact_value(v, k) for k, v in value.items()}
        return value


def _drop(value: Any, path: list[str]) -> Any:
    """``value`` without the field at ``path``; lists on the way apply to every element."""
    if isinstance(value, list):
        return [_drop(item, path) for item in value]
    if not isinstance(value, dict) or not path:
        return value
    head, rest = path[0], path[1:]
    if head not in value or (not rest and head in _KEEP):
        return value
    if not rest:
        return {k: v for k, v in value.items() if k != head}
    return {**value, head: _drop(value[head], rest)}
