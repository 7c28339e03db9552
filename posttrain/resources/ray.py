"""Ray as a Dagster resource: a local runtime by default, a cluster when configured."""

from __future__ import annotations

from typing import cast

import dagster as dg
from pydantic import Field

from posttrain.platform.errors import ConfigError
from posttrain.platform.execution import Executor, InProcessExecutor, RayExecutor
from posttrain.platform.progress import LogProgress, ProgressSink
from posttrain.platform.settings import ExecutorKind, ExecutorSettings, load_settings


class RayResource(dg.ConfigurableResource):
    """How the heavy stages (dedup, decontamination, tokenization) run.

    Unset fields come from the settings (``POSTTRAIN_EXECUTOR``, ``POSTTRAIN_RAY_ADDRESS``,
    ``POSTTRAIN_RAY_NUM_CPUS`` or the ``executor:`` section of the settings file), as for
    the CLI. ``mode="ray"`` (the default) connects to ``address`` when set (``auto``,
    ``ray://host:10001``) and otherwise starts a local Ray runtime with ``num_cpus``
    workers; ``mode="in_process"`` runs every batch in the Dagster process (debugging, tiny
    inputs). Output is identical in every mode.
    """

    # str, not a Literal: Dagster's config system has no optional Literal.
    mode: str | None = Field(
        default=None, description="ray or in_process; None = from the settings, else ray."
    )
    address: str | None = Field(
        default=None, description="Ray cluster address; None = from the settings, else local."
    )
    num_cpus: int | None = Field(
        default=None, description="CPUs of the local runtime; None = from the settings, else all."
    )
    home: str | None = Field(
        default=None, description="Where the settings file is looked for; default $POSTTRAIN_HOME."
    )

    def executor_settings(self) -> ExecutorSettings:
        """The settings with the fields set on this resource laid over them."""
        if self.mode not in (None, "ray", "in_process"):
            raise ConfigError(f"ray resource: mode: expected ray or in_process, got {self.mode!r}")
        return load_settings(self.home).executor.choose(
            default="ray",
            kind=cast(ExecutorKind | None, self.mode),
            ray_address=self.address,
            num_cpus=self.num_cpus,
        )

    def executor(self, progress: ProgressSink | None = None) -> Executor:
        """An executor for one stage; the Ray runtime is shared across stages of a run."""
        chosen = self.executor_settings()
        if chosen.kind == "in_process":
            return InProcessExecutor(progress)
        return RayExecutor(address=chosen.ray_address, num_cpus=chosen.num_cpus, progress=progress)

    def executor_for(self, context: dg.AssetExecutionContext) -> Executor:
        """An executor whose progress goes to the Dagster run log every few seconds.

        The run log says where the tasks run (address, nodes, CPUs).
        """
        executor = self.executor(LogProgress(context.log.info, interval_s=5.0))
        if isinstance(executor, RayExecutor):
            context.log.info(f"heavy stages run on the {executor.describe()}")
        return executor
