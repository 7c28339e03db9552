"""The typer application every command module registers on, and shared CLI plumbing."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from posttrain.platform.errors import ConfigError
from posttrain.platform.execution import Executor, InProcessExecutor, RayExecutor
from posttrain.platform.progress import ProgressSink
from posttrain.platform.settings import ExecutorSettings, load_settings
from posttrain.platform.warehouse import Warehouse

app = typer.Typer(
    name="posttrain",
    help=(
        "posttrain: build SFT, DPO and RL corpora as versioned Iceberg tables.\n\n"
        "Tables live in the warehouse under $POSTTRAIN_HOME (default: .posttrain/ in the "
        "project). Materialize the whole pipeline with `make demo` or from the Dagster UI "
        "(`make ui`); these commands ingest, inspect and query it."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)

# Piped output (a file, less, CI logs) gets a wide fixed width, so ids and paths are never
# cut to the 80 columns rich assumes without a terminal.
console = Console() if sys.stdout.isatty() else Console(width=200)
err_console = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help=(
            "Warehouse home (posttrain.yaml settings, or the embedded catalog.db + warehouse/). "
            "Default: $POSTTRAIN_HOME or .posttrain/"
        ),
        envvar="POSTTRAIN_HOME",
        show_default=False,
    ),
]


WorkersOption = Annotated[
    int,
    typer.Option(min=1, help="CPUs: 1 runs in this process; more start a local Ray runtime."),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        help="Run on this Ray cluster (e.g. auto, ray://head:10001) instead.",
        envvar="POSTTRAIN_RAY_ADDRESS",
    ),
]


def executor_settings(
    workers: int | None, ray_address: str | None, home: Path | None = None
) -> ExecutorSettings:
    """The executor a command runs on: the flags laid over the resolved settings.

    ``--ray-address`` (or one in the settings) means that cluster; ``--workers`` above 1 a
    local Ray runtime with that many CPUs; otherwise the settings' ``executor.kind``, and
    in-process when nothing says otherwise.
    """
    settings = load_settings(home).executor
    if workers is not None and workers > 1:
        return settings.choose(default="ray", kind="ray", ray_address=ray_address, num_cpus=workers)
    return settings.choose(default="in_process", ray_address=ray_address)


def make_executor(
    workers: int | None,
    ray_address: str | None,
    progress: ProgressSink,
    *,
    home: Path | None = None,
) -> Executor:
    """In-process for one worker, a local Ray runtime for more, or the given Ray cluster
    (see :func:`executor_settings`)."""
    chosen = executor_settings(workers, ray_address, home)
    if chosen.kind == "ray":
        return RayExecutor(address=chosen.ray_address, num_cpus=chosen.num_cpus, progress=progress)
    return InProcessExecutor(progress)


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def options_config(model: type[ConfigT], what: str, **options: object) -> ConfigT:
    """Validate command-line options into ``model``, naming each bad option as its flag.

    Raises:
        ConfigError: e.g. ``invalid dedup settings: --threshold: Input should be ≤ 1``.
    """
    try:
        return model.model_validate(options)
    except ValidationError as exc:
        problems = "; ".join(
            f"--{'-'.join(str(part) for part in error['loc']).replace('_', '-') or 'options'}: "
            f"{error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"invalid {what} settings: {problems}") from None


def open_warehouse(home: Path | None) -> Warehouse:
    """The warehouse the settings name (see :mod:`posttrain.platform.settings`), the same one
    the Dagster assets use; the embedded one under ``home`` when nothing is configured."""
    if home is not None and home.exists() and not home.is_dir():
        raise ConfigError(
            f"--home {home} is a file, not a warehouse folder (catalog.db + warehouse/)"
        )
    return Warehouse(load_settings(home).warehouse)
