"""``silver.labeled``: every conversation joined to its outcomes, cut under the policy.

A cut at time ``as_of`` reads pinned snapshots of ``silver.conversations``,
``bronze.records`` (for ``ingested_at``) and ``bronze.outcomes``, keeps the outcomes that
arrived by ``as_of``, and holds a conversation when it has one of them or was ingested
before ``as_of - window`` (:class:`~.policy.LateArrivalPolicy`). Per record it gives the
latest value of each kind (latest by ``arrived_at``, ties broken by ``outcome_id``) and the
full history as a list, oldest first. Rows are sorted by ``record_id``: the same inputs and
``as_of`` give the same bytes.

The snapshot summary records what the cut included: the input snapshot ids
(``posttrain.input.*``), ``posttrain.outcome-cutoff`` (the latest ``arrived_at`` joined),
``posttrain.outcomes-included`` (their number) and ``posttrain.as-of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb
import pyarrow as pa

from posttrain.platform import checks
from posttrain.platform.checks import CheckOutcome
from posttrain.platform.lineage import Lineage
from posttrain.platform.outcomes.policy import LateArrivalPolicy
from posttrain.platform.schemas import SILVER_LABELED, TABLES, TableName
from posttrain.platform.warehouse import Snapshots, Warehouse

LABELED = TableName.SILVER_LABELED
OUTCOMES = TableName.BRONZE_OUTCOMES
CONVERSATIONS = TableName.SILVER_CONVERSATIONS
RECORDS = TableName.BRONZE_RECORDS
INPUTS = (CONVERSATIONS, RECORDS, OUTCOMES)
OUTCOME_CUTOFF_KEY = "posttrain.outcome-cutoff"
OUTCOMES_INCLUDED_KEY = "posttrain.outcomes-included"
AS_OF_KEY = "posttrain.as-of"

_JOIN = """
with o as (select * from outcomes where arrived_at <= $as_of),
hist as (
    select
        record_id,
        list(struct_pack(outcome_id, kind, value, text, source, arrived_at)
             order by arrived_at, outcome_id) as outcomes,
        count(*)::integer as num_outcomes,
        max(arrived_at) as labeled_at,
        arg_max(value, struct_pack(arrived_at, outcome_id)) filter (where kind = 'reward')
            as reward,
        arg_max(value, struct_pack(arrived_at, outcome_id)) filter (where kind = 'preference')
            as preference,
        arg_max(value, struct_pack(arrived_at, outcome_id)) filter (where kind = 'test_result')
            as test_result,
        arg_max(text, struct_pack(arrived_at, outcome_id)) filter (where kind = 'feedback')
            as feedback,
        arg_max(text, struct_pack(arrived_at, outcome_id)) filter (where kind = 'text')
            as text
    from o group by record_id
)
select c.record_id, c.messages, c.source, c.workspace, c.license, b.ingested_at,
       h.reward, h.preference, h.test_result, h.feedback, h.text,
       coalesce(h.num_outcomes, 0)::integer as num_outcomes, h.labeled_at,
       coalesce(h.outcomes, []) as outcomes
from conversations c
left join (select record_id, ingested_at from records) b using (record_id)
left join hist h using (record_id)
where h.record_id is not null or coalesce(b.ingested_at < $oldest, false)
order by c.record_id
"""


@dataclass(frozen=True)
class LabeledCut:
    """What one cut of ``silver.labeled`` read and wrote."""

    inputs: dict[str, int | None]
    as_of: datetime
    snapshot_id: int | None
    committed: bool
    rows: int
    outcomes_included: int
    outcome_cutoff: datetime | None
    seconds: float = 0.0


def _read(warehouse: Warehouse, name: str, columns: tuple[str, ...], at: Snapshots) -> pa.Table:
    snapshot_id = at.get(name)
    if snapshot_id is None or not warehouse.exists(name):
        return TABLES[name].schema.empty_table().select(list(columns))
    return warehouse.read(name, columns=columns, snapshot_id=snapshot_id)


def join_outcomes(
    warehouse: Warehouse, policy: LateArrivalPolicy, *, at: Snapshots, as_of: datetime
) -> pa.Table:
    """The rows of ``silver.labeled`` for a cut at ``as_of`` over the pinned snapshots ``at``."""
    conversations = _read(
        warehouse, CONVERSATIONS, ("record_id", "messages", "source", "workspace", "license"), at
    )
    records = _read(warehouse, RECORDS, ("record_id", "ingested_at"), at)
    outcomes = _read(
        warehouse,
        OUTCOMES,
        ("outcome_id", "record_id", "kind", "value", "text", "source", "arrived_at"),
        at,
    )
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("conversations", conversations)
        con.register("records", records)
        con.register("outcomes", outcomes)
        joined = con.sql(
            _JOIN, params={"as_of": as_of, "oldest": policy.oldest_unlabeled(as_of)}
        ).to_arrow_table()
    finally:
        con.close()
    return joined.cast(SILVER_LABELED)


def _stamp(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat() if value is not None else "none"


def parse_stamp(value: str | None) -> datetime | None:
    """Inverse of the timestamps this module writes into snapshot summaries."""
    return None if value in (None, "", "none") else datetime.fromisoformat(str(value))


def cut_labeled(
    warehouse: Warehouse,
    policy: LateArrivalPolicy,
    *,
    as_of: datetime | None = None,
    at: Snapshots | None = None,
) -> LabeledCut:
    """Rebuild ``silver.labeled`` for a cut at ``as_of`` (default: now) over pinned inputs.

    ``at`` pins the inputs (default: their current snapshots). When the rows equal those of
    the current ``silver.labeled``, nothing is committed. The write is a compare-and-swap on
    the ``silver.labeled`` snapshot read first.

    Raises:
        CommitConflictError: another writer replaced ``silver.labeled`` meanwhile.
    """
    import time

    started = time.monotonic()
    as_of = (as_of or datetime.now(UTC)).astimezone(UTC)
    inputs = dict(at) if at is not None else warehouse.pin(*INPUTS)
    inputs = {name: inputs.get(name) for name in INPUTS}
    previous = warehouse.snapshot_id(LABELED)
    rows = join_outcomes(warehouse, policy, at=inputs, as_of=as_of)
    history = rows["outcomes"]
    included = sum(len(item) for item in history.to_pylist() if item)
    cutoff_scalar = pa.compute.max(rows["labeled_at"]) if rows.num_rows else None
    cutoff: datetime | None = cutoff_scalar.as_py() if cutoff_scalar is not None else None
    current = (
        warehouse.read(LABELED, snapshot_id=previous).sort_by("record_id")
        if previous is not None
        else None
    )
    # Compared as Python values: Arrow's equality also compares the list fields' names and
    # nullability, which differ between what DuckDB builds and what Iceberg reads back.
    if (
        current is not None
        and current.num_rows == rows.num_rows
        and current.to_pylist() == rows.to_pylist()
    ):
        return LabeledCut(
            inputs,
            as_of,
            previous,
            False,
            rows.num_rows,
            included,
            cutoff,
            time.monotonic() - started,
        )
    lineage = Lineage(
        "outcomes-join",
        inputs,
        policy.config_hash(),
        properties={
            OUTCOME_CUTOFF_KEY: _stamp(cutoff),
            OUTCOMES_INCLUDED_KEY: str(included),
            AS_OF_KEY: _stamp(as_of),
        },
    )
    snapshot_id = warehouse.overwrite(LABELED, rows, lineage, expected_snapshot=previous)
    return LabeledCut(
        inputs,
        as_of,
        snapshot_id,
        True,
        rows.num_rows,
        included,
        cutoff,
        time.monotonic() - started,
    )


def labeled_checks(warehouse: Warehouse, snapshot_id: int | None) -> dict[str, CheckOutcome]:
    """The checks of ``silver.labeled`` at ``snapshot_id``: key unique, schema as declared,
    and every joined outcome counted in ``num_outcomes``."""
    at = {str(LABELED): snapshot_id}
    results = {
        "record_id_unique": checks.keys_unique(warehouse, LABELED, "record_id", at=at),
        "schema_matches": checks.schema_matches(warehouse, LABELED, SILVER_LABELED, at=at),
    }
    if snapshot_id is None:
        results["history_complete"] = CheckOutcome(True, "no rows yet")
        return results
    data = warehouse.read(LABELED, columns=("num_outcomes", "outcomes"), snapshot_id=snapshot_id)
    counts = data["num_outcomes"].to_pylist()
    lengths = [len(items or []) for items in data["outcomes"].to_pylist()]
    bad = sum(1 for count, length in zip(counts, lengths, strict=True) if count != length)
    results["history_complete"] = CheckOutcome(
        bad == 0,
        f"{bad} rows whose num_outcomes differs from their history"
        if bad
        else f"all {len(counts):,} rows carry their full outcome history",
        {"rows": len(counts), "mismatched": bad},
    )
    return results
