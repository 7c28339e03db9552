"""Checks on ``silver.preferences`` and ``gold.dpo``, and the margin histogram.

Each returns a :class:`~posttrain.platform.checks.CheckOutcome`; the asset layer turns it
into a Dagster check result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.checks import CheckOutcome, MetadataValue
from posttrain.platform.decontam import DecontamConfig, DecontamStep, index_from_warehouse
from posttrain.platform.preference.build import (
    OWN_ORIGINS,
    PREFERENCE_REJECTIONS,
    PREFERENCES,
    outcome_judgments,
    preference_rows,
)
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import Snapshots, Warehouse


def _read(warehouse: Warehouse, name: str, columns: tuple[str, ...], at: Snapshots) -> pa.Table:
    """``columns`` of ``name`` at its pinned snapshot (empty when it had none)."""
    snapshot_id = at.get(name)
    if snapshot_id is None:
        return TABLES[name].schema.empty_table().select(list(columns))
    return warehouse.read(name, columns=columns, snapshot_id=snapshot_id)


def _sample(values: Sequence[object], limit: int = 5) -> str:
    return ", ".join(str(v) for v in list(values)[:limit])


def preferences_conserved(warehouse: Warehouse, at: Snapshots) -> CheckOutcome:
    """The accounting of :mod:`posttrain.platform.preference.build`, checked:

    every preference bronze record is a record-level rejection xor the source of candidate
    pairs; every candidate pair is kept xor a pair-level rejection.
    """
    bronze_rows = preference_rows(warehouse, at.get(TableName.BRONZE_RECORDS), ("record_id",))
    pairwise = outcome_judgments(warehouse, at.get(TableName.BRONZE_OUTCOMES))
    bronze = set(bronze_rows["record_id"].to_pylist()) | set(pairwise["record_id"].to_pylist())
    pairs = _read(warehouse, PREFERENCES, ("pair_id", "record_id", "origin"), at)
    own = pairs.filter(pc.is_in(pairs["origin"], pa.array(OWN_ORIGINS)))
    rejections = _read(warehouse, PREFERENCE_REJECTIONS, ("record_id", "pair_id"), at)
    record_level = rejections.filter(pc.is_null(rejections["pair_id"]))
    pair_level = rejections.filter(pc.is_valid(rejections["pair_id"]))
    refused_records = set(record_level["record_id"].to_pylist())
    sources = set(own["record_id"].to_pylist()) | set(pair_level["record_id"].to_pylist())
    kept_pairs = set(own["pair_id"].to_pylist())
    refused_pairs = pair_level["pair_id"].to_pylist()
    figures: dict[str, MetadataValue] = {
        "bronze_records": len(bronze),
        "records_rejected": len(refused_records),
        "records_with_pairs": len(sources),
        "pairs_kept": len(kept_pairs),
        "pairs_rejected": len(refused_pairs),
    }
    problems = []
    if missing := sorted(bronze - refused_records - sources):
        problems.append(f"{len(missing)} bronze records unaccounted for, e.g. {_sample(missing)}")
    if both := sorted(refused_records & sources):
        problems.append(f"{len(both)} records both refused and paired, e.g. {_sample(both)}")
    if unknown := sorted((refused_records | sources) - bronze):
        problems.append(f"{len(unknown)} records not in bronze, e.g. {_sample(unknown)}")
    if twice := sorted(kept_pairs & set(refused_pairs)):
        problems.append(f"{len(twice)} pairs both kept and refused, e.g. {_sample(twice)}")
    if len(set(refused_pairs)) != len(refused_pairs):
        problems.append("a pair is refused more than once")
    if problems:
        return CheckOutcome(False, "; ".join(problems), figures)
    return CheckOutcome(
        True,
        f"{len(bronze):,} records = {len(refused_records):,} refused + {len(sources):,} paired; "
        f"{len(kept_pairs) + len(refused_pairs):,} candidate pairs = {len(kept_pairs):,} kept "
        f"+ {len(refused_pairs):,} refused",
        figures,
    )


def sides_differ(warehouse: Warehouse, name: str, at: Snapshots) -> CheckOutcome:
    """No pair of ``name`` (at its snapshot in ``at``) has chosen equal to rejected."""
    table = _read(warehouse, name, ("pair_id", "chosen", "rejected"), at)
    same = [row["pair_id"] for row in table.to_pylist() if row["chosen"] == row["rejected"]]
    if same:
        return CheckOutcome(
            False,
            f"{len(same):,} pairs with chosen = rejected, e.g. {_sample(same)}",
            {"same_sides": len(same)},
        )
    return CheckOutcome(True, f"all {table.num_rows:,} pairs differ", {"pairs": table.num_rows})


def prompts_clean(
    warehouse: Warehouse, name: str, config: DecontamConfig, at: Snapshots
) -> CheckOutcome:
    """No pair of ``name`` has a prompt sharing n-grams with an ``eval.*`` benchmark."""
    table = _read(warehouse, name, ("pair_id", "prompt"), at)
    step = DecontamStep(index_from_warehouse(warehouse, config), config)
    probe = pa.table({"record_id": table["pair_id"], "messages": table["prompt"]})
    found = step.evidence(probe)
    figures: dict[str, MetadataValue] = {"pairs": table.num_rows, "contaminated": len(found.rows)}
    if len(found.rows):
        ids = table["pair_id"].take(pa.array(found.rows, pa.int64())).to_pylist()
        return CheckOutcome(
            False,
            f"{len(found.rows):,} prompts overlap a benchmark, e.g. {_sample(ids)}: "
            f"{found.detail[0]}",
            figures,
        )
    return CheckOutcome(True, f"no prompt of {table.num_rows:,} overlaps a benchmark", figures)


def units_unique(warehouse: Warehouse, at: Snapshots) -> CheckOutcome:
    """Each (record_id, pair_id) of the preference rejections occurs once."""
    table = _read(warehouse, PREFERENCE_REJECTIONS, ("record_id", "pair_id"), at)
    keys = list(zip(table["record_id"].to_pylist(), table["pair_id"].to_pylist(), strict=True))
    duplicates = len(keys) - len(set(keys))
    return CheckOutcome(
        duplicates == 0,
        f"{duplicates:,} repeated (record_id, pair_id) among {len(keys):,} rejections",
        {"rows": len(keys), "duplicates": duplicates},
    )


def margin_histogram(margins: Sequence[float], bins: int = 8) -> str:
    """A markdown table of how many pairs fall in each margin range.

    Example:
        >>> print(margin_histogram([1.0, 2.0, 2.0], bins=2))
        | margin | pairs |
        |---|---:|
        | [1, 1.5) | 1 |
        | [1.5, 2] | 2 |
    """
    lines = ["| margin | pairs |", "|---|---:|"]
    finite = [m for m in margins if math.isfinite(m)]
    if not finite:
        return "\n".join([*lines, "| (no scored pairs) | 0 |"])
    low, high = min(finite), max(finite)
    if low == high:
        return "\n".join([*lines, f"| {low:g} | {len(finite)} |"])
    width = (high - low) / bins
    counts = [0] * bins
    for margin in finite:
        counts[min(int((margin - low) / width), bins - 1)] += 1
    for n, count in enumerate(counts):
        start, end = low + n * width, low + (n + 1) * width
        closing = "]" if n == bins - 1 else ")"
        lines.append(f"| [{start:.3g}, {end:.3g}{closing} | {count} |")
    return "\n".join(lines)
