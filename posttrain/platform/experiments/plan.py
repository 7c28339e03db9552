"""Resolve an experiment against the warehouse: every corpus reference to the exact
snapshot it names, frozen into a pinned blend.

A plan is what ``posttrain experiment plan`` prints and what a launch freezes into its
manifest. Unknown tables, versions, tags and snapshot names, empty tables and missing
columns are reported with the line of the reference in the experiment file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from posttrain.platform.errors import PosttrainError
from posttrain.platform.experiments.blend_stream import pin, pinned_to_json
from posttrain.platform.experiments.config import (
    ExperimentConfig,
    ExperimentConfigError,
    ExperimentFile,
    Loc,
    Problem,
    TrainerKind,
)
from posttrain.platform.warehouse import Warehouse


@dataclass(frozen=True)
class SourcePlan:
    """One corpus of the blend, resolved."""

    ref: str
    table: str
    snapshot_id: int
    weight: float
    rows: int | None


@dataclass(frozen=True)
class Plan:
    """What a launch would run: the config and the exact snapshots the blend reads."""

    config: ExperimentConfig
    sources: list[SourcePlan]
    blend_json: str

    @property
    def snapshots(self) -> dict[str, int]:
        """Corpus reference as written → the snapshot id it pinned."""
        return {source.ref: source.snapshot_id for source in self.sources}

    @property
    def manifest_id(self) -> str:
        """Equal ids ⇔ same config and same pinned blend ⇔ the same data stream."""
        return manifest_id(self.config.canonical_json(), self.blend_json)


def manifest_id(config_json: str, blend_json: str) -> str:
    """First 16 hex digits of the SHA-256 of the canonical config and the pinned blend."""
    return hashlib.sha256(f"{config_json}\n{blend_json}".encode()).hexdigest()[:16]


def _source_loc(index: int, ref: bool) -> Loc:
    return ("data", "sources", index, "ref" if ref else "snapshot")


def plan_experiment(warehouse: Warehouse, parsed: ExperimentFile) -> Plan:
    """Resolve every corpus reference and pin the blend.

    Raises:
        ExperimentConfigError: a reference names no table, version or snapshot, a table is
            empty or lacks a column; each with the line of the reference.
    """
    from posttrain.platform.versions import resolve

    config = parsed.config
    problems: list[Problem] = []
    sources: list[SourcePlan] = []
    for index, source in enumerate(config.data.sources):
        loc = _source_loc(index, source.ref is not None)
        try:
            ref = source.table_ref()
            table, snapshot_id = resolve(warehouse, ref)
        except PosttrainError as exc:
            problems.append(parsed.problem(loc, str(exc)))
            continue
        if snapshot_id is None:
            problems.append(parsed.problem(loc, f"{ref}: the table is empty, nothing to train on"))
            continue
        problems += _column_problems(warehouse, parsed, loc, table, snapshot_id)
        rows = warehouse.info(table, snapshot_id).rows
        sources.append(SourcePlan(ref, table, snapshot_id, source.weight, rows))
    if config.trainer.kind == TrainerKind.GRPO and len({s.table for s in sources}) > 1:
        problems.append(
            parsed.problem(
                ("data", "sources"),
                "grpo reads its verifiers from one table of RL prompts; the sources name "
                f"{sorted({s.table for s in sources})}",
            )
        )
    if problems:
        raise ExperimentConfigError(parsed.path, problems)
    pinned_refs = [f"{s.table}@{s.snapshot_id}" for s in sources]
    try:
        pinned = pin(warehouse, config, pinned_refs)
    except PosttrainError as exc:
        raise ExperimentConfigError(parsed.path, [parsed.problem(("data",), str(exc))]) from None
    return Plan(config, sources, pinned_to_json(pinned))


def _column_problems(
    warehouse: Warehouse, parsed: ExperimentFile, loc: Loc, table: str, snapshot_id: int
) -> list[Problem]:
    loaded = warehouse.table(table)
    snapshot = loaded.snapshot_by_id(snapshot_id)
    schema_id = snapshot.schema_id if snapshot is not None else None
    schema = loaded.schemas().get(schema_id) if schema_id is not None else None
    names = (schema or loaded.schema()).column_names
    missing = [c for c in parsed.config.columns if c not in names]
    if not missing:
        return []
    where: Loc = ("data", "columns") if parsed.config.data.columns else loc
    return [
        parsed.problem(
            where,
            f"{table} has no column(s) {', '.join(missing)} that {parsed.config.trainer.kind} "
            f"reads; its columns: {', '.join(names)}",
        )
    ]


def describe(plan: Plan) -> dict[str, Any]:
    """The plan as plain data (what ``plan --json`` prints)."""
    config = plan.config
    return {
        "name": config.name,
        "manifest_id": plan.manifest_id,
        "config_hash": config.config_hash(),
        "trainer": config.trainer.kind.value,
        "trainer_settings": config.trainer.settings,
        "base_model": config.model.base,
        "tokenizer": config.model.tokenizer_name,
        "seq_length": config.data.seq_length,
        "packing": config.data.packing,
        "columns": list(config.columns),
        "seed": config.seed,
        "evals": config.evals,
        "sources": [
            {
                "ref": s.ref,
                "table": s.table,
                "snapshot_id": s.snapshot_id,
                "weight": s.weight,
                "rows": s.rows,
            }
            for s in plan.sources
        ],
        "blend": json.loads(plan.blend_json),
    }
