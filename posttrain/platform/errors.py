"""Every error posttrain raises on purpose derives from :class:`PosttrainError`.

The messages are written for the person at the terminal: they name the file, the line or
record, and what was expected, so the fix is obvious without reading a traceback.
"""

from __future__ import annotations

from pathlib import Path


class PosttrainError(Exception):
    """Root of every error raised deliberately by posttrain."""


class ConfigError(PosttrainError):
    """A configuration value is invalid; raised before any data is written."""


class InputFormatError(PosttrainError):
    """An input file is not what it claims to be (not JSONL, not Parquet, no known chat format)."""

    def __init__(
        self,
        path: str | Path,
        expectation: str,
        *,
        line: int | None = None,
        found: str | None = None,
        unit: str = "line",
    ) -> None:
        self.path = str(path)
        self.line = line
        self.expectation = expectation
        self.found = found
        # ``unit`` names what ``line`` counts: "line" in JSONL, "row" in Parquet.
        where = f"{self.path}, {unit} {line}" if line is not None else self.path
        message = f"{where}: expected {expectation}"
        if found is not None:
            message += f", found {found}"
        super().__init__(message)


class RecordError(PosttrainError):
    """One record cannot be used; it becomes a row in ``silver.rejections``, not a crash.

    ``reason`` is a :class:`~posttrain.platform.schemas.RejectionReason` value and
    ``detail`` a human-readable explanation stored alongside it.
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class CatalogError(PosttrainError):
    """The Iceberg catalog or warehouse cannot be reached or is in an unexpected state."""


class CommitConflictError(CatalogError):
    """A write kept losing the commit race to other writers; the table was left unchanged."""

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        super().__init__(
            f"could not commit to {name}: {why}; nothing was written, so re-running is safe"
        )


class TableNotFoundError(CatalogError):
    """A table name does not exist in the catalog."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        hint = ", ".join(sorted(known)) if known else "none yet: run `make demo` or materialize"
        super().__init__(f"no table named {name!r}; tables in the warehouse: {hint}")


class MissingDependencyError(PosttrainError):
    """An optional dependency is needed for this feature; the message names the pip command."""

    def __init__(self, feature: str, requirement: str) -> None:
        super().__init__(f"{feature} needs {requirement}: pip install '{requirement}'")


class QueryError(PosttrainError):
    """A query or a ``show`` filter failed: DuckDB's or pyiceberg's message, on one line."""


class QueryRefusedError(QueryError):
    """SQL that would do more than read the posttrain tables (COPY, ATTACH, SET, DDL, ...)."""
