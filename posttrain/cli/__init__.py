"""``posttrain`` command line. Each command lives in its own module and registers on ``app``.

A user error prints as one red line and exits with status 2: errors that posttrain raises
on purpose (:class:`PosttrainError`, naming the file, record and expectation), bad
options (click's usage errors), and the environment's and libraries' expected failures at
the edge (a missing or unreadable file, a catalog or DuckDB error). Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import typer
from rich.markup import escape

from posttrain.cli import _app
from posttrain.platform.errors import PosttrainError

# The module that registers each top-level command or group. `posttrain <command>` imports
# only that module, not all sixteen (a tenth of a second of start-up, which `posttrain
# dedup` pays on every run); `--help`, `app` and unknown names import them all.
# tests/cli/test_startup.py checks this map against what the modules register.
COMMAND_MODULES = {
    "branch": "curation",
    "decontam": "decontam",
    "dedup": "dedup",
    "doctor": "doctor",
    "eval": "evals",
    "experiment": "experiments",
    "export": "export",
    "forget": "curation",
    "ingest": "ingest",
    "lineage": "versions",
    "outcomes": "outcomes",
    "publish": "curation",
    "query": "tables",
    "rollback": "versions",
    "serve": "serve",
    "show": "tables",
    "snapshot": "outcomes",
    "sources": "sources",
    "tables": "tables",
    "verify": "verify",
    "version": "versions",
    "view": "view",
    "workspace": "workspace",
}
# Registration order: the order of `posttrain --help`.
_MODULES = (
    "curation",
    "decontam",
    "dedup",
    "doctor",
    "evals",
    "experiments",
    "export",
    "ingest",
    "outcomes",
    "serve",
    "sources",
    "tables",
    "verify",
    "versions",
    "view",
    "workspace",
)


def register_commands(modules: Sequence[str] = _MODULES) -> typer.Typer:
    """Import the command modules (all by default): importing one registers its commands."""
    for module in modules:
        importlib.import_module(f"posttrain.cli.{module}")
    return _app.app


def __getattr__(name: str) -> typer.Typer:
    # `from posttrain.cli import app`: the application with every command on it.
    if name == "app":
        return register_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main", "run"]

# Library errors that mean "your input or environment", not "posttrain has a bug". Matched
# by module so that the CLI need not import DuckDB or pyiceberg before a command needs them.
_LIBRARY_ERROR_MODULES = ("duckdb", "_duckdb", "pyiceberg.exceptions")


def _one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def _fail(message: str, status: int = 2) -> int:
    # soft_wrap: rich would otherwise fold a long message at the terminal width.
    _app.err_console.print(f"[bold red]error:[/] {escape(_one_line(message))}", soft_wrap=True)
    return status


def _is_library_error(exc: Exception) -> bool:
    return type(exc).__module__.startswith(_LIBRARY_ERROR_MODULES)


def _invoke(args: list[str]) -> object:
    module = COMMAND_MODULES.get(args[0]) if args else None
    if module is None:
        return register_commands()(args=args, prog_name="posttrain", standalone_mode=False)
    # Only this command's module: build the group by hand, since typer would make an app
    # with a single command that command itself (`posttrain INPUT` instead of `posttrain
    # dedup INPUT`).
    register_commands([module])
    group = typer.main.get_group(_app.app)
    return group.main(args=args, prog_name="posttrain", standalone_mode=False)


def run(args: Sequence[str] | None = None) -> int:
    """Run one ``posttrain`` command line (``sys.argv`` by default); return the exit status."""
    try:
        status = _invoke(list(sys.argv[1:] if args is None else args))
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
    status = run()
    # The process ends here. Interpreter teardown would run a last garbage collection over
    # every object the imports made (0.05 s, a tenth of `posttrain dedup`'s start-up);
    # frozen, they are skipped. Atexit handlers and stream flushing still run, and objects
    # are still freed by reference counting: only unreachable cycles are left to the OS.
    import gc

    gc.freeze()
    sys.exit(status)
