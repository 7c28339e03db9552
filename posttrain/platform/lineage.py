"""What every snapshot records about where it came from.

Each write stamps its Iceberg snapshot summary with the snapshot ids it read, the hash of
the config that produced it and the code version, so a corpus can be traced back and
rebuilt months later.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from posttrain import __version__

INPUT_PREFIX = "posttrain.input."
CONFIG_HASH_KEY = "posttrain.config-hash"
CODE_VERSION_KEY = "posttrain.code-version"
STAGE_KEY = "posttrain.stage"
REPAIR_KEY = "posttrain.repair"


def _git(*args: str) -> str:
    """Output of ``git ARGS`` in the checkout posttrain runs from; raises if there is none."""
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=5
    ).stdout.strip()


@functools.cache
def code_version() -> str:
    """Package version plus the git commit of the checkout, if there is one.

    A checkout with uncommitted changes is marked ``+dirty``: its output cannot be rebuilt
    from the commit alone.
    """
    try:
        commit = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return __version__
    return f"{__version__}+g{commit}{'.dirty' if dirty else ''}"


@functools.cache
def git_commit() -> str | None:
    """The full commit of the checkout posttrain runs from, if it runs from one."""
    try:
        return _git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return None


@dataclass(frozen=True)
class Lineage:
    """Where a write came from: the stage, its inputs' snapshot ids and its config.

    Example:
        >>> summary = Lineage("silver", {"bronze.records": 42}, "abc123").summary()
        >>> summary["posttrain.input.bronze.records"]
        '42'
    """

    stage: str
    inputs: dict[str, int | None] = field(default_factory=dict)
    config_hash: str = ""
    # Further ``posttrain.*`` summary properties a later stage reads back, e.g. the
    # decontamination config silver used, which gold's contamination check reuses.
    properties: dict[str, str] = field(default_factory=dict)
    repair: str = ""  # what ``posttrain doctor --repair`` fixed, when it wrote this snapshot

    def summary(self) -> dict[str, str]:
        """Snapshot summary properties (Iceberg summaries are string to string)."""
        props = {
            STAGE_KEY: self.stage,
            CONFIG_HASH_KEY: self.config_hash,
            CODE_VERSION_KEY: code_version(),
            **self.properties,
        }
        if self.repair:
            props[REPAIR_KEY] = self.repair
        for table, snapshot_id in sorted(self.inputs.items()):
            props[INPUT_PREFIX + table] = "none" if snapshot_id is None else str(snapshot_id)
        return props


def inputs_from_summary(summary: dict[str, str]) -> dict[str, int | None]:
    """Inverse of :meth:`Lineage.summary` for the input snapshot ids."""
    return {
        key.removeprefix(INPUT_PREFIX): None if value == "none" else int(value)
        for key, value in summary.items()
        if key.startswith(INPUT_PREFIX)
    }
