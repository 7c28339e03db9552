"""``posttrain`` command line. Each command lives in its own module and registers on ``app``.

Errors that posttrain raises on purpose (:class:`PosttrainError`) print as one red line
naming the file, record and expectation, and exit with status 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import sys

from posttrain.cli import decontam, dedup, export, ingest, tables  # noqa: F401  (registers commands)
from posttrain.cli._app import app, err_console
from posttrain.platform.errors import PosttrainError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point of the ``posttrain`` script."""
    try:
        app()
    except PosttrainError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
