"""Ray as a Dagster resource: a local runtime by default, a cluster when configured."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from posttrain.platform.execution import Executor, InProcessExecutor, RayExecutor
from posttrain.platform.progress import LogProgress, ProgressSink


class RayResource(dg.ConfigurableResource):
    """How the heavy stages (dedup, decontamination, tokenization) run.

    ``mode="ray"`` (the default) connects to ``address`` when set (``auto``, ``ray://host:10001``)
    and otherwise starts a local Ray runtime with ``num_cpus`` workers; ``mode="in_process"``
    runs every batch in the Dagster process (debugging, tiny inputs). Output is identical in
    every mode.
    """

    mode: Literal["ray", "in_process"] = Field(default="ray", description="ray or in_process.")
    address: str | None = Field(
        default=None, description="Ray cluster address; None starts a local runtime."
    )
    num_cpus: int | None = Field(
        default=None, description="CPUs of the local runtime; None = all cores."
    )

    def executor(self, progress: ProgressSink | None = None) -> Executor:
        """An executor for one stage; the Ray runtime is shared across stages of a run."""
        if self.mode == "in_process":
            return InProcessExecutor(progress)
        return RayExecutor(address=self.address, num_cpus=self.num_cpus, progress=progress)

    def executor_for(self, context: dg.AssetExecutionContext) -> Executor:
        """An executor whose progress goes to the Dagster run log every few seconds."""
        return self.executor(LogProgress(context.log.info, interval_s=5.0))
