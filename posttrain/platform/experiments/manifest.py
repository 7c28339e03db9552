"""Frozen experiment manifests (``lineage.experiments``) and registered checkpoints
(``lineage.checkpoints``).

A launch writes its manifest before any compute: the validated config, the pinned blend
(exact snapshot ids), the code version and the versions of the packages that train. A
training that fails still leaves its manifest, and ``launch --manifest ID`` re-runs a
manifest with the same config and the same pinned blend, so the trainer reads the same
bytes (the checkpoint's ``stream_digest`` proves it).
"""

from __future__ import annotations

import getpass
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import pyarrow as pa
from pyiceberg.expressions import EqualTo, Reference
from pyiceberg.expressions.literals import literal

from posttrain.platform.errors import ConfigError
from posttrain.platform.experiments.config import ExperimentConfig
from posttrain.platform.experiments.plan import Plan, manifest_id
from posttrain.platform.lineage import Lineage, code_version, git_commit
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import ALL_ROWS, Warehouse

EXPERIMENTS = TableName.LINEAGE_EXPERIMENTS
CHECKPOINTS = TableName.LINEAGE_CHECKPOINTS

# The packages whose versions decide what a training run computes.
PACKAGES = (
    "posttrain",
    "torch",
    "transformers",
    "trl",
    "datasets",
    "accelerate",
    "tokenizers",
    "pyiceberg",
    "pyarrow",
    "numpy",
    "dagster",
)


class ManifestNotFoundError(ConfigError):
    """No experiment or manifest by that id in lineage.experiments."""


def package_versions() -> dict[str, str]:
    """Installed versions of :data:`PACKAGES` (those not installed are left out)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


@dataclass(frozen=True)
class Manifest:
    """One row of ``lineage.experiments``: everything needed to re-run a launch."""

    experiment_id: str
    manifest_id: str
    name: str
    config_path: str
    config_hash: str
    config: str
    trainer: str
    base_model: str
    corpus_refs: list[str]
    snapshots: dict[str, int]
    blend: str
    eval_suites: list[str]
    seed: int
    code_version: str
    git_sha: str | None
    package_versions: dict[str, str]
    replay_of: str | None = None
    launched_by: str | None = None
    launched_at: datetime | None = None

    def experiment_config(self) -> ExperimentConfig:
        """The validated config the launch froze."""
        return ExperimentConfig.model_validate_json(self.config)

    def pinned_sources(self) -> list[tuple[str, str, int]]:
        """(reference as written, table, snapshot id) of each corpus of the blend."""
        sources = json.loads(self.blend)["sources"]
        return [
            (ref, str(s["table"]), int(s["snapshot_id"]))
            for ref, s in zip(self.corpus_refs, sources, strict=True)
        ]

    def inputs(self) -> dict[str, int | None]:
        """Table → snapshot id read, for snapshot summaries (one table read at two
        snapshots keeps the first)."""
        found: dict[str, int | None] = {}
        for _, table, snapshot_id in self.pinned_sources():
            found.setdefault(table, snapshot_id)
        return found

    def row(self) -> dict[str, object]:
        return {
            **self.__dict__,
            "snapshots": list(self.snapshots.items()),
            "package_versions": list(self.package_versions.items()),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Manifest:
        values = dict(row)
        values["snapshots"] = dict(values.get("snapshots") or [])
        values["package_versions"] = dict(values.get("package_versions") or [])
        values["corpus_refs"] = list(values.get("corpus_refs") or [])
        values["eval_suites"] = list(values.get("eval_suites") or [])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """The manifest as plain JSON-ready data (config and blend parsed)."""
        data: dict[str, Any] = dict(self.__dict__)
        data["config"] = json.loads(self.config)
        data["blend"] = json.loads(self.blend)
        data["launched_at"] = self.launched_at.isoformat() if self.launched_at else None
        return data


def new_experiment_id(name: str, now: datetime) -> str:
    """``NAME-YYYYMMDD-HHMMSS-<6 hex>``: sortable by time, unique per launch."""
    return f"{name}-{now.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def freeze_manifest(
    plan: Plan,
    *,
    config_path: str,
    replay_of: str | None = None,
    launched_by: str | None = None,
) -> Manifest:
    """The manifest of a launch of ``plan`` (not written yet: see :func:`record_manifest`)."""
    config = plan.config
    now = datetime.now(UTC)
    return Manifest(
        experiment_id=new_experiment_id(config.name, now),
        manifest_id=plan.manifest_id,
        name=config.name,
        config_path=config_path,
        config_hash=config.config_hash(),
        config=config.canonical_json(),
        trainer=config.trainer.kind.value,
        base_model=config.model.base,
        corpus_refs=[source.ref for source in plan.sources],
        snapshots=plan.snapshots,
        blend=plan.blend_json,
        eval_suites=list(config.evals),
        seed=config.seed,
        code_version=code_version(),
        git_sha=git_commit(),
        package_versions=package_versions(),
        replay_of=replay_of,
        launched_by=launched_by or _user(),
        launched_at=now,
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def record_manifest(warehouse: Warehouse, manifest: Manifest) -> int | None:
    """Append the manifest to ``lineage.experiments`` (once per experiment id)."""
    data = pa.Table.from_pylist([manifest.row()], schema=TABLES[EXPERIMENTS].schema)
    lineage = Lineage("experiment", manifest.inputs(), config_hash=manifest.config_hash)
    return warehouse.append_new(EXPERIMENTS, data, "experiment_id", lineage).snapshot_id


def manifests(warehouse: Warehouse) -> list[Manifest]:
    """Every launch recorded, oldest first."""
    if not warehouse.exists(EXPERIMENTS) or warehouse.snapshot_id(EXPERIMENTS) is None:
        return []
    rows = warehouse.read(EXPERIMENTS).to_pylist()
    found = [Manifest.from_row(row) for row in rows]
    return sorted(found, key=lambda m: m.launched_at or datetime.min.replace(tzinfo=UTC))


def find_manifest(warehouse: Warehouse, ident: str) -> Manifest:
    """The launch with experiment id ``ident``, else the first launch of manifest ``ident``.

    Raises:
        ManifestNotFoundError: neither (the message lists the latest launches).
    """
    known = manifests(warehouse)
    for manifest in known:
        if manifest.experiment_id == ident:
            return manifest
    for manifest in known:
        if manifest.manifest_id == ident:
            return manifest
    latest = ", ".join(f"{m.experiment_id} ({m.manifest_id})" for m in known[-3:]) or "none yet"
    raise ManifestNotFoundError(
        f"no experiment or manifest {ident!r} in {EXPERIMENTS}; latest launches: {latest}"
    )


def replay_plan(manifest: Manifest) -> Plan:
    """The plan a manifest froze: same config, same pinned blend (no warehouse lookup, so
    later versions, tags or commits cannot change what it reads)."""
    from posttrain.platform.experiments.plan import SourcePlan

    config = manifest.experiment_config()
    blend = json.loads(manifest.blend)
    sources = [
        SourcePlan(ref, str(s["table"]), int(s["snapshot_id"]), float(s["weight"]), s.get("rows"))
        for ref, s in zip(manifest.corpus_refs, blend["sources"], strict=True)
    ]
    plan = Plan(config, sources, manifest.blend)
    if plan.manifest_id != manifest_id(manifest.config, manifest.blend):  # pragma: no cover
        raise ConfigError(f"manifest {manifest.manifest_id} does not hash to itself")
    return plan


# -- checkpoints --------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """One row of ``lineage.checkpoints``."""

    checkpoint_id: str
    path: str
    experiment_id: str
    manifest_id: str
    step: int
    examples: int
    stream_digest: str
    metrics: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None

    def row(self) -> dict[str, object]:
        return {**self.__dict__, "metrics": json.dumps(self.metrics, sort_keys=True)}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Checkpoint:
        values = dict(row)
        values["metrics"] = json.loads(values.get("metrics") or "{}")
        return cls(**values)


def record_checkpoint(
    warehouse: Warehouse, checkpoint: Checkpoint, manifest: Manifest
) -> int | None:
    """Register a checkpoint in ``lineage.checkpoints``."""
    data = pa.Table.from_pylist([checkpoint.row()], schema=TABLES[CHECKPOINTS].schema)
    lineage = Lineage("checkpoint", manifest.inputs(), config_hash=manifest.config_hash)
    return warehouse.append_new(CHECKPOINTS, data, "checkpoint_id", lineage).snapshot_id


def checkpoints(warehouse: Warehouse, experiment_id: str | None = None) -> list[Checkpoint]:
    """The checkpoints registered (of one experiment), oldest first."""
    if not warehouse.exists(CHECKPOINTS) or warehouse.snapshot_id(CHECKPOINTS) is None:
        return []
    row_filter = (
        EqualTo(term=Reference("experiment_id"), value=literal(experiment_id))
        if experiment_id is not None
        else ALL_ROWS
    )
    rows = warehouse.read(CHECKPOINTS, row_filter=row_filter).to_pylist()
    found = [Checkpoint.from_row(row) for row in rows]
    return sorted(found, key=lambda c: c.created_at or datetime.min.replace(tzinfo=UTC))


def get_checkpoint(warehouse: Warehouse, checkpoint_id: str) -> Checkpoint:
    """The checkpoint ``checkpoint_id``.

    Raises:
        ManifestNotFoundError: no such checkpoint (the message lists the latest).
    """
    known = checkpoints(warehouse)
    for checkpoint in known:
        if checkpoint.checkpoint_id == checkpoint_id:
            return checkpoint
    latest = ", ".join(c.checkpoint_id for c in known[-3:]) or "none yet"
    raise ManifestNotFoundError(
        f"no checkpoint {checkpoint_id!r} in {CHECKPOINTS}; latest: {latest}"
    )
