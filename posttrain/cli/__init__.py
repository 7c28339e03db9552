"""``posttrain`` command line. Each command lives in its own module and registers on ``app``.

A user error prints as one red line and exits with status 2: errors that posttrain raises
on purpose (:class:`PosttrainError`, naming the file, record and expectation), bad
options (click's usage errors), and the environment's and libraries' expected failures at
the edge (a missing or unreadable file, a catalog or DuckDB error). Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import typer
from rich.markup import escape

from posttrain.cli import (  # noqa: F401  (registers commands)
    curation,
    decontam,
    dedup,
    doctor,
    export,
    ingest,
    outcomes,
    serve,
    sources,
    tables,
    verify,
    versions,
    workspace,
)
from posttrain.cli._app import app, err_console
from posttrain.platform.errors import PosttrainError

__all__ = ["app", "main", "run"]

# Library errors that mean "your input or environment", not "posttrain has a bug". Matched
# by module so that the CLI need not import DuckDB or pyiceberg before a command needs them.
_LIBRARY_ERROR_MODULES = ("duckdb", "_duckdb", "pyiceberg.exceptions")


def _one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def _fail(message: str, status: int = 2) -> int:
    # soft_wrap: rich would otherwise fold a long message at the terminal width.
    err_console.print(f"[bold red]error:[/] {escape(_one_line(message))}", soft_wrap=True)
    return status


def _is_library_error(exc: Exception) -> bool:
    return type(exc).__module__.startswith(_LIBRARY_ERROR_MODULES)


def run(args: Sequence[str] | None = None) -> int:
    """Run one ``posttrain`` command line (``sys.argv`` by default); return the exit status."""
    try:
        status = app(args=args, prog_name="posttrain", standalone_mode=False)
    except typer.TyperException as exc:  # click's usage errors (typer vendors click)
        if type(exc).__name__ == "NoArgsIsHelpError":
            return exc.exit_code  # typer has printed the help already
        context = getattr(exc, "ctx", None)
        hint = f" (see `{context.command_path} --help`)" if context is not None else ""
        return _fail(exc.format_message() + hint, exc.exit_code)
    except typer.Abort:
        return _fail("aborted", 1)
    except PosttrainError as exc:
        return _fail(str(exc))
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return _fail(f"{exc.strerror or exc}{where}")
    except Exception as exc:
        if not _is_library_error(exc):
            raise
        return _fail(f"{type(exc).__name__}: {exc}")
    return status if isinstance(status, int) else 0


def main() -> None:
    """Entry point of the ``posttrain`` script."""
    sys.exit(run())
