"""Data checks on the warehouse tables, as plain functions.

Dagster turns each :class:`CheckOutcome` into an asset check result (blocking where a
failure must stop downstream assets); the CLI and tests call the same functions.

Every check reading a table takes ``at``: the snapshot ids a run read and wrote (table →
id, ``None`` for a table that had no snapshot). A run passes them so its checks judge what
it produced even when another writer commits meanwhile; without ``at`` (the CLI, tests),
the current snapshots are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import AlwaysTrue, BooleanExpression, EqualTo, Reference
from pyiceberg.expressions.literals import literal

from posttrain.platform.decontam import (
    DecontamConfig,
    DecontamStep,
    index_from_warehouse,
    measure_contamination,
)
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.silver.pipeline import silver_accounts_for
from posttrain.platform.warehouse import Snapshots, Warehouse

MetadataValue = int | float | str

# How to get out when a blocking check fails: appended to the failure's description.
DOCTOR_HINT = (
    "to see and repair what is broken, run `posttrain doctor` then `posttrain doctor --repair`"
)


@dataclass(frozen=True)
class CheckOutcome:
    """Result of one check: pass/fail, a sentence for the UI, and figures."""

    passed: bool
    description: str
    metadata: dict[str, MetadataValue] = field(default_factory=dict)


def _failed(
    description: str, figures: dict[str, MetadataValue], hint: str = DOCTOR_HINT
) -> CheckOutcome:
    return CheckOutcome(False, f"{description}; {hint}", figures)


def _ids(
    warehouse: Warehouse, name: str, column: str = "record_id", at: Snapshots | None = None
) -> pa.Array:
    return warehouse.column(name, column, at=at)


def _read(
    warehouse: Warehouse, name: str, columns: tuple[str, ...], at: Snapshots | None
) -> pa.Table:
    """``columns`` of ``name`` at its pinned snapshot (empty when it had none)."""
    snapshot_id = at[name] if at is not None else warehouse.snapshot_id(name)
    if snapshot_id is None:
        return TABLES[name].schema.empty_table().select(list(columns))
    return warehouse.read(name, columns=columns, snapshot_id=snapshot_id)


def _pinned(warehouse: Warehouse, name: str, at: Snapshots | None) -> int | None:
    """The snapshot of ``name`` to read: pinned in ``at`` when listed there, else current."""
    if at is not None and name in at:
        return at[name]
    return warehouse.snapshot_id(name)


def _filtered(
    warehouse: Warehouse,
    name: str,
    columns: tuple[str, ...],
    row_filter: BooleanExpression,
    at: Snapshots | None,
) -> pa.Table:
    """``columns`` of the rows of ``name`` matching ``row_filter`` at its pinned snapshot."""
    snapshot_id = _pinned(warehouse, name, at)
    if snapshot_id is None or not warehouse.exists(name):
        return TABLES[name].schema.empty_table().select(list(columns))
    return warehouse.read(name, columns=columns, row_filter=row_filter, snapshot_id=snapshot_id)


def _composite(
    warehouse: Warehouse, name: str, columns: tuple[str, ...], at: Snapshots | None
) -> pa.Array:
    """Each row's key columns joined with "/" (a key of several columns as one string)."""
    table = _filtered(warehouse, name, columns, AlwaysTrue(), at)
    parts = [pc.cast(table[column], pa.string()) for column in columns]
    return pc.binary_join_element_wise(*parts, "/", null_handling="replace").combine_chunks()


def _sample(values: pa.Array, limit: int = 5) -> str:
    return ", ".join(str(v) for v in values.slice(0, limit).to_pylist())


def keys_unique(
    warehouse: Warehouse, name: str, key: str | None = None, *, at: Snapshots | None = None
) -> CheckOutcome:
    """Every ``key`` value of ``name`` occurs once (default: the key in its TableSpec; a
    key of several columns is checked as their combination)."""
    if key is None and len(TABLES[name].key) > 1:
        columns = TABLES[name].key
        key = "+".join(columns)
        values = _composite(warehouse, name, columns, at)
    else:
        if key is None:
            (key,) = TABLES[name].key
        values = _ids(warehouse, name, key, at)
    distinct = pc.count_distinct(values).as_py() if len(values) else 0
    duplicates = len(values) - distinct
    if duplicates == 0:
        return CheckOutcome(
            True, f"all {len(values):,} {key} values are unique", {"rows": len(values)}
        )
    counts = pc.value_counts(values)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
    return _failed(
        f"{duplicates:,} duplicate {key} values in {name}, e.g. {_sample(repeated)}",
        {"rows": len(values), "duplicates": duplicates},
    )


def schema_matches(
    warehouse: Warehouse,
    name: str,
    expected: pa.Schema | None = None,
    *,
    at: Snapshots | None = None,
) -> CheckOutcome:
    """The table's Iceberg schema (at the pinned snapshot) has exactly the expected columns."""
    expected = expected if expected is not None else TABLES[name].schema
    table = warehouse.table(name)
    pinned = at[name] if at is not None else None
    snapshot = table.snapshot_by_id(pinned) if pinned is not None else None
    schema = (
        table.schemas()[snapshot.schema_id]
        if snapshot is not None and snapshot.schema_id is not None
        else table.schema()
    )
    actual = schema.as_arrow()
    problems = []
    for expected_field in expected:
        if expected_field.name not in actual.names:
            problems.append(f"missing column {expected_field.name}")
            continue
        actual_type = actual.field(expected_field.name).type
        if not _same_type(actual_type, expected_field.type):
            problems.append(f"{expected_field.name}: {actual_type} != {expected_field.type}")
    extra = sorted(set(actual.names) - set(expected.names))
    problems += [f"unexpected column {column}" for column in extra]
    if problems:
        return _failed(
            "; ".join(problems),
            {"problems": len(problems)},
            "the table was changed outside posttrain: restore its schema or recreate it",
        )
    return CheckOutcome(True, f"{len(expected)} columns as declared", {"columns": len(expected)})


def _same_type(actual: pa.DataType, expected: pa.DataType) -> bool:
    # Iceberg names list elements "element" and stores strings as large_string on read in
    # some versions; compare the logical shape, not those spellings.
    def normalize(data_type: pa.DataType) -> str:
        return (
            str(data_type)
            .replace("large_string", "string")
            .replace("large_list", "list")
            .replace("large_binary", "binary")
            .replace("string_view", "string")
            .replace("element: ", "item: ")
        )

    return normalize(actual) == normalize(expected)


def rows_conserved(warehouse: Warehouse, *, at: Snapshots | None = None) -> CheckOutcome:
    """Every bronze chat record is in exactly one of silver.conversations and silver.rejections
    (rollouts and preference records excepted: :func:`rollouts_conserved` and the preference
    checks account for them)."""
    bronze = _bronze_ids(warehouse, rollouts=False, at=at)
    kept = _ids(warehouse, TableName.SILVER_CONVERSATIONS, at=at)
    rejected = _ids(warehouse, TableName.SILVER_REJECTIONS, at=at)
    figures: dict[str, MetadataValue] = {
        "bronze_rows": len(bronze),
        "silver_rows": len(kept),
        "rejected_rows": len(rejected),
    }
    problems = _conservation_problems(bronze, kept, rejected, records="records", kept_as="silver")
    if problems:
        return _failed("; ".join(problems), figures)
    return CheckOutcome(
        True,
        f"bronze {len(bronze):,} = silver {len(kept):,} + rejections {len(rejected):,}",
        figures,
    )


def _conservation_problems(
    bronze: pa.Array, kept: pa.Array, rejected: pa.Array, *, records: str, kept_as: str
) -> list[str]:
    """What breaks "every bronze id is kept or rejected, once": empty when nothing does."""
    accounted = pa.concat_arrays([kept, rejected]) if len(kept) + len(rejected) else kept
    missing = pc.filter(bronze, pc.invert(pc.is_in(bronze, value_set=accounted)))
    unknown = pc.filter(accounted, pc.invert(pc.is_in(accounted, value_set=bronze)))
    both = pc.filter(kept, pc.is_in(kept, value_set=rejected))
    problems = []
    if len(missing):
        problems.append(
            f"{len(missing):,} bronze {records} in neither table, e.g. {_sample(missing)}"
        )
    if len(unknown):
        problems.append(
            f"{len(unknown):,} {kept_as} rows not bronze {records}, e.g. {_sample(unknown)}"
        )
    if len(both):
        problems.append(f"{len(both):,} {records} both kept and rejected, e.g. {_sample(both)}")
    if len(bronze) != len(accounted):
        problems.append(
            f"bronze {len(bronze):,} != {kept_as} {len(kept):,} + rejections {len(rejected):,}"
        )
    return problems


def _bronze_ids(warehouse: Warehouse, *, rollouts: bool, at: Snapshots | None) -> pa.Array:
    """Bronze record ids of rollouts (``rollouts=True``) or of the chat records silver
    accounts for (neither rollouts nor preference records)."""
    rows = _read(warehouse, TableName.BRONZE_RECORDS, ("record_id", "format"), at)
    rollout = pc.fill_null(pc.equal(rows["format"], "rollout"), False)
    chosen = rows.filter(rollout if rollouts else silver_accounts_for(rows["format"]))["record_id"]
    return chosen.combine_chunks().cast(pa.large_string())


def rollouts_conserved(warehouse: Warehouse, *, at: Snapshots | None = None) -> CheckOutcome:
    """Every bronze rollout is in exactly one of silver.rollouts and silver.rollout_rejections."""
    bronze = _bronze_ids(warehouse, rollouts=True, at=at)
    kept = _ids(warehouse, TableName.SILVER_ROLLOUTS, at=at)
    rejected = _ids(warehouse, TableName.SILVER_ROLLOUT_REJECTIONS, at=at)
    figures: dict[str, MetadataValue] = {
        "bronze_rollouts": len(bronze),
        "rollouts": len(kept),
        "rejected": len(rejected),
    }
    problems = _conservation_problems(
        bronze, kept, rejected, records="rollouts", kept_as="rollouts"
    )
    if problems:
        return _failed(
            "; ".join(problems),
            figures,
            f"to rebuild them, run `{rematerialize_command(TableName.SILVER_ROLLOUTS)}`",
        )
    return CheckOutcome(
        True,
        f"bronze rollouts {len(bronze):,} = rollouts {len(kept):,} + rejections {len(rejected):,}",
        figures,
    )


def duplicates_point_to_kept(warehouse: Warehouse, *, at: Snapshots | None = None) -> CheckOutcome:
    """Every duplicate rejection names a kept record that is in silver.conversations."""
    rejections = _read(
        warehouse, TableName.SILVER_REJECTIONS, ("record_id", "reason", "kept_record_id"), at
    )
    is_dup = pc.is_in(rejections["reason"], value_set=pa.array(["exact_dup", "near_dup"]))
    dups = rejections.filter(pc.and_(is_dup, pc.is_valid(rejections["kept_record_id"])))
    kept = _ids(warehouse, TableName.SILVER_CONVERSATIONS, at=at)
    dangling = dups.filter(pc.invert(pc.is_in(dups["kept_record_id"], value_set=kept)))
    if dangling.num_rows:
        return _failed(
            f"{dangling.num_rows:,} duplicates point to records not in silver, "
            f"e.g. {_sample(dangling['record_id'].combine_chunks())}",
            {"duplicates": dups.num_rows, "dangling": dangling.num_rows},
        )
    return CheckOutcome(
        True,
        f"{dups.num_rows:,} duplicates all point to kept records",
        {"duplicates": dups.num_rows},
    )


def rate_at_most(what: str, count: int, total: int, max_rate: float) -> CheckOutcome:
    """``count / total`` is within ``max_rate`` (e.g. the share of contaminated rows)."""
    rate = count / total if total else 0.0
    figures: dict[str, MetadataValue] = {
        "count": count,
        "total": total,
        "rate": round(rate, 6),
        "max_rate": max_rate,
    }
    passed = rate <= max_rate
    verb = "within" if passed else "above"
    return CheckOutcome(
        passed, f"{what}: {count:,}/{total:,} = {rate:.2%}, {verb} {max_rate:.2%}", figures
    )


def share_at_least(what: str, share: float, floor: float) -> CheckOutcome:
    """``share`` (a fraction such as packing efficiency) is at least ``floor``."""
    verb = "at or above" if share >= floor else "below"
    return CheckOutcome(
        share >= floor,
        f"{what}: {share:.2%}, {verb} the floor of {floor:.2%}",
        {"share": round(share, 6), "floor": floor},
    )


def sft_records(warehouse: Warehouse, *, at: Snapshots | None = None) -> CheckOutcome:
    """``gold.sft`` holds exactly the silver conversations and the rollouts that rejection
    sampling kept (``silver.rollouts`` with ``sft_status = kept``)."""
    kept = EqualTo(term=Reference("sft_status"), value=literal("kept"))
    rollouts = _filtered(warehouse, TableName.SILVER_ROLLOUTS, ("record_id",), kept, at)
    return same_records(
        warehouse,
        TableName.SILVER_CONVERSATIONS,
        TableName.GOLD_SFT,
        at=at,
        also=rollouts["record_id"].combine_chunks().cast(pa.large_string()),
    )


def same_records(
    warehouse: Warehouse,
    upstream: str,
    downstream: str,
    *,
    at: Snapshots | None = None,
    also: pa.Array | None = None,
) -> CheckOutcome:
    """``downstream`` holds exactly the records of ``upstream`` and ``also`` (no row lost
    or invented)."""
    up = _ids(warehouse, upstream, at=at)
    if also is not None and len(also):
        up = pa.concat_arrays([up, also])
    down = _ids(warehouse, downstream, at=at)
    lost = pc.filter(up, pc.invert(pc.is_in(up, value_set=down)))
    invented = pc.filter(down, pc.invert(pc.is_in(down, value_set=up)))
    figures: dict[str, MetadataValue] = {
        f"{upstream}_rows": len(up),
        f"{downstream}_rows": len(down),
    }
    if len(lost) or len(invented) or len(up) != len(down):
        return _failed(
            f"{len(lost):,} records of {upstream} missing from {downstream} "
            f"(e.g. {_sample(lost)}); {len(invented):,} not in {upstream}",
            figures,
            f"to rebuild it, run `{rematerialize_command(downstream)}`",
        )
    return CheckOutcome(True, f"{downstream} holds the {len(up):,} records of {upstream}", figures)


def _packing_filter(pack_key: str | None) -> BooleanExpression:
    if pack_key is None:
        return AlwaysTrue()
    return EqualTo(term=Reference("pack_key"), value=literal(pack_key))


def packs_cover_records(
    warehouse: Warehouse,
    dropped: list[str] | None = None,
    *,
    at: Snapshots | None = None,
    pack_key: str | None = None,
) -> CheckOutcome:
    """Every ``gold.sft`` record is in exactly one pack (of the packing ``pack_key``, when
    given), or was dropped for a stated reason."""
    records = _ids(warehouse, TableName.GOLD_SFT, at=at)
    packed = _filtered(
        warehouse, TableName.GOLD_SFT_PACKED, ("record_ids",), _packing_filter(pack_key), at
    )
    placed = (
        pc.list_flatten(packed["record_ids"]).combine_chunks()
        if packed.num_rows
        else (pa.array([], pa.string()))
    )
    excused = pa.array(dropped or [], pa.string())
    distinct_placed = pc.unique(placed)
    repeated = len(placed) - len(distinct_placed)
    expected = pc.filter(records, pc.invert(pc.is_in(records, value_set=excused)))
    missing = pc.filter(expected, pc.invert(pc.is_in(expected, value_set=distinct_placed)))
    unknown = pc.filter(distinct_placed, pc.invert(pc.is_in(distinct_placed, value_set=records)))
    figures: dict[str, MetadataValue] = {
        "records": len(records),
        "placed": len(placed),
        "dropped": len(excused),
    }
    problems = []
    if repeated:
        problems.append(f"{repeated:,} records placed more than once")
    if len(missing):
        problems.append(f"{len(missing):,} records in no pack, e.g. {_sample(missing)}")
    if len(unknown):
        problems.append(f"{len(unknown):,} packed records not in gold.sft, e.g. {_sample(unknown)}")
    if problems:
        return _failed(
            "; ".join(problems),
            figures,
            f"to rebuild the packs, run `{rematerialize_command(TableName.GOLD_SFT_PACKED)}`",
        )
    return CheckOutcome(
        True, f"{len(placed):,} records packed once each, {len(excused):,} dropped", figures
    )


def packs_fit(
    warehouse: Warehouse,
    seq_length: int,
    *,
    at: Snapshots | None = None,
    pack_key: str | None = None,
) -> CheckOutcome:
    """No pack exceeds ``seq_length``, and each pack's ``seq_lengths`` add up to its tokens
    (the packs of ``pack_key`` when given, else all)."""
    packed = _filtered(
        warehouse,
        TableName.GOLD_SFT_PACKED,
        ("input_ids", "assistant_masks", "seq_lengths"),
        _packing_filter(pack_key),
        at,
    )
    if packed.num_rows == 0:
        return CheckOutcome(True, "no packs", {"packs": 0})
    tokens = pc.fill_null(pc.list_value_length(packed["input_ids"]), 0).to_numpy()
    masks = pc.fill_null(pc.list_value_length(packed["assistant_masks"]), 0).to_numpy()
    declared = np.bincount(  # sum of seq_lengths per pack, 0 for a pack with none
        pc.list_parent_indices(packed["seq_lengths"]).to_numpy(),
        weights=pc.list_flatten(packed["seq_lengths"]).to_numpy(),
        minlength=packed.num_rows,
    )
    longest = int(tokens.max())
    too_long = int((tokens > seq_length).sum())
    misaligned = int((tokens != masks).sum())
    bad_sums = int((tokens != declared).sum())
    figures: dict[str, MetadataValue] = {
        "packs": packed.num_rows,
        "longest": longest,
        "seq_length": seq_length,
    }
    problems = []
    if too_long:
        problems.append(f"{too_long:,} packs longer than {seq_length}")
    if misaligned:
        problems.append(f"{misaligned:,} packs whose mask length differs from input_ids")
    if bad_sums:
        problems.append(f"{bad_sums:,} packs whose seq_lengths do not sum to their length")
    if problems:
        return _failed(
            "; ".join(problems),
            figures,
            f"to rebuild the packs, run `{rematerialize_command(TableName.GOLD_SFT_PACKED)}`",
        )
    return CheckOutcome(
        True, f"{packed.num_rows:,} packs, longest {longest} ≤ {seq_length}", figures
    )


def contamination_at_most(
    warehouse: Warehouse,
    name: str,
    config: DecontamConfig,
    max_rate: float,
    *,
    at: Snapshots | None = None,
) -> CheckOutcome:
    """At most ``max_rate`` of ``name``'s rows share n-grams with an ``eval.*`` benchmark.

    Silver already refuses contaminated records; this re-scan of what reaches gold catches
    benchmarks added after a record was published and rows that bypassed silver.
    """
    data = _read(warehouse, name, ("record_id", "messages"), at)
    step = DecontamStep(index_from_warehouse(warehouse, config), config)
    summary = measure_contamination(data, step, InProcessExecutor())
    figures: dict[str, MetadataValue] = {
        **summary.metadata(),
        "ngram": config.ngram,
        "min_matches": config.min_matches,
    }
    description = summary.describe() + f" (limit {max_rate:.2%})"
    if summary.exceeds(max_rate):
        return _failed(
            description,
            figures,
            "to drop the contaminated rows, rebuild silver against the new benchmarks: "
            f"`{SILVER_REBUILD}`",
        )
    return CheckOutcome(True, description, figures)


def rematerialize_command(*names: str, full_refresh: bool = False) -> str:
    """The shell command that rebuilds ``names`` and everything downstream of them.

    Name every table of a multi-table asset (silver's two tables are built together).
    """
    selection = ",".join(name.replace(".", "/") + "*" for name in names)
    command = f"dagster asset materialize -m posttrain.definitions --select '{selection}'"
    if full_refresh:
        command += (
            ' --config-json \'{"ops": {"silver_tables": {"config": {"full_refresh": true}}}}\''
        )
    return command


SILVER_REBUILD = rematerialize_command(
    TableName.SILVER_CONVERSATIONS, TableName.SILVER_REJECTIONS, full_refresh=True
)
