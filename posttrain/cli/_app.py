"""The typer application every command module registers on, and shared CLI plumbing."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from posttrain.platform.errors import ConfigError

# pyarrow, pyiceberg and Ray load in the commands that use them; so do the settings models
# (capture, OTLP, proxy: 0.05 s), in the functions that read the settings.
if TYPE_CHECKING:
    from posttrain.platform.execution import Executor
    from posttrain.platform.progress import ProgressSink
    from posttrain.platform.settings import ExecutorSettings, WarehouseSettings
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

# Below this much input one core is done before more would pay off. Threads start at no
# cost (a local Ray runtime takes ~2 s), so the automatic choice uses them.
AUTO_PARALLEL_MIN_BYTES = 16 * 2**20

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
    int | None,
    typer.Option(
        min=1,
        help="CPUs: 1 runs in this process; more start a local Ray runtime. Default: the "
        "settings' executor if one is set, else every core of this machine, as threads of "
        f"this process, when the input is large ({AUTO_PARALLEL_MIN_BYTES // 2**20} MB of "
        "text or more), one otherwise.",
        show_default=False,
    ),
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
    from posttrain.platform.settings import load_settings

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
    input_bytes: int = 0,
) -> Executor:
    """In-process for one worker, a local Ray runtime for more, or the given Ray cluster
    (see :func:`executor_settings`).

    When neither the flags nor the settings choose, every core as threads of this process
    for an input of ``input_bytes`` ≥ :data:`AUTO_PARALLEL_MIN_BYTES`, one core below it.
    """
    from posttrain.platform.execution import InProcessExecutor, RayExecutor, ThreadExecutor
    from posttrain.platform.settings import load_settings

    configured = load_settings(home).executor
    if workers is None and not (ray_address or configured.ray_address or configured.kind):
        large = input_bytes >= AUTO_PARALLEL_MIN_BYTES and (os.cpu_count() or 1) > 1
        return ThreadExecutor(progress=progress) if large else InProcessExecutor(progress)
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
    from posttrain.platform.warehouse import Warehouse

    return Warehouse(warehouse_settings(home))


def warehouse_settings(home: Path | None) -> WarehouseSettings:
    """How to reach the warehouse :func:`open_warehouse` opens, without opening it."""
    from posttrain.platform.settings import load_settings

    if home is not None and home.exists() and not home.is_dir():
        raise ConfigError(
            f"--home {home} is a file, not a warehouse folder (catalog.db + warehouse/)"
        )
    return load_settings(home).warehouse


TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="A workspace API token (pt_...): read only that workspace's rows. "
        "Default: $POSTTRAIN_TOKEN; without one, the local warehouse is read whole.",
        envvar="POSTTRAIN_TOKEN",
        show_envvar=False,
    ),
]


def reading_workspace(token: str | None, home: Path | None) -> str | None:
    """The workspace a read is scoped to (``None``: no token, the whole warehouse).

    Raises:
        AccessError: the token is malformed, unknown, revoked, or its role cannot read.
    """
    if not token:
        return None
    from posttrain.platform.access import Permission, principal_from_token
    from posttrain.platform.settings import load_settings

    principal = principal_from_token(load_settings(home).home, token)
    assert principal is not None
    principal.require(Permission.READ)
    return principal.name
