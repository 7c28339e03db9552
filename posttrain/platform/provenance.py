"""Where a table's rows at one snapshot came from: the snapshot chain down to bronze, the
source files, and the licenses; and the license policy a corpus version must respect.

The chain follows the input snapshot ids each write records in its snapshot summary
(``posttrain.input.TABLE``); rows are traced to bronze by ``record_id`` (``record_ids``
for packed sequences), and a source's license is the row's own ``license`` or, when the
row has none, the one ``lineage.sources`` records for the source.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import ConfigError, VersionError
from posttrain.platform.lineage import STAGE_KEY, inputs_from_summary
from posttrain.platform.schemas import TableName
from posttrain.platform.versions import resolve
from posttrain.platform.warehouse import Warehouse

UNKNOWN = "(unknown)"


class LicensePolicy(FrozenConfig):
    """Licenses that must not be mixed in one corpus version.

    Example (YAML)::

        forbidden_together:
          - [GPL-3.0, CC-BY-NC-4.0]
        forbidden: [proprietary]
    """

    forbidden_together: list[tuple[str, str]] = Field(default_factory=list)
    forbidden: list[str] = Field(default_factory=list)

    @classmethod
    def from_file(cls, path: Path) -> LicensePolicy:
        import yaml
        from pydantic import ValidationError

        try:
            raw = yaml.safe_load(path.read_text()) or {}
            return cls.model_validate(raw)
        except (yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"{path}: not a license policy: {exc}") from None

    def violations(self, licenses: set[str]) -> list[str]:
        """What ``licenses`` (present in one corpus) break, one sentence each."""
        found = [f"license {name} is forbidden" for name in self.forbidden if name in licenses]
        found += [
            f"licenses {a} and {b} must not be mixed"
            for a, b in self.forbidden_together
            if a in licenses and b in licenses
        ]
        return found


@dataclass(frozen=True)
class ChainLink:
    """One snapshot in the chain: the table, its snapshot id and the stage that wrote it."""

    table: str
    snapshot_id: int | None
    stage: str
    depth: int


@dataclass
class Provenance:
    """Where the rows of ``table`` at ``snapshot_id`` came from."""

    table: str
    snapshot_id: int | None
    chain: list[ChainLink]
    rows: int = 0
    records: int = 0
    records_in_bronze: int = 0
    by_license: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    by_source_uri: Counter[str] = field(default_factory=Counter)


def snapshot_chain(warehouse: Warehouse, table: str, snapshot_id: int | None) -> list[ChainLink]:
    """The snapshot and, recursively, the input snapshots recorded by each write."""
    chain: list[ChainLink] = []
    todo = [(table, snapshot_id, 0)]
    seen: set[tuple[str, int | None]] = set()
    while todo:
        name, snap, depth = todo.pop(0)
        if (name, snap) in seen:
            continue
        seen.add((name, snap))
        summary: dict[str, object] = {}
        if snap is not None and warehouse.exists(name):
            table_obj = warehouse.table(name)
            if table_obj.metadata.snapshot_by_id(snap) is not None:
                summary = warehouse.snapshot_summary(name, snap)
        chain.append(ChainLink(name, snap, str(summary.get(STAGE_KEY, "")), depth))
        inputs = inputs_from_summary({k: str(v) for k, v in summary.items()})
        todo.extend((t, s, depth + 1) for t, s in sorted(inputs.items()))
    return chain


def _record_ids(warehouse: Warehouse, table: str, snapshot_id: int) -> pa.Array:
    names = warehouse.table(table).schema().as_arrow().names
    if "record_id" in names:
        return warehouse.column(table, "record_id", at={table: snapshot_id})
    if "record_ids" in names:
        lists = warehouse.read(table, columns=("record_ids",), snapshot_id=snapshot_id)
        return pc.list_flatten(lists.column("record_ids").combine_chunks()).cast(pa.large_string())
    raise VersionError(f"{table} has neither record_id nor record_ids: no lineage to bronze")


def _source_licenses(warehouse: Warehouse) -> dict[str, str]:
    if not warehouse.exists(TableName.LINEAGE_SOURCES):
        return {}
    rows = warehouse.read(TableName.LINEAGE_SOURCES, columns=("source", "license")).to_pylist()
    return {str(r["source"]): str(r["license"]) for r in rows if r["license"]}


def lineage(warehouse: Warehouse, spec: str) -> Provenance:
    """The chain of ``TABLE@REF`` down to bronze, with rows per license, source and file.

    Raises:
        RefNotFoundError, TableNotFoundError: ``spec`` names no snapshot.
    """
    table, snapshot_id = resolve(warehouse, spec)
    chain = snapshot_chain(warehouse, table, snapshot_id)
    found = Provenance(table, snapshot_id, chain)
    if snapshot_id is None:
        return found
    found.rows = warehouse.info(table, snapshot_id).rows
    ids = pc.unique(_record_ids(warehouse, table, snapshot_id))
    found.records = len(ids)
    bronze_links = [link for link in chain if link.table == TableName.BRONZE_RECORDS]
    bronze_at = bronze_links[0].snapshot_id if bronze_links else None
    if table == TableName.BRONZE_RECORDS:
        bronze_at = snapshot_id
    if bronze_at is None:
        bronze_at = warehouse.snapshot_id(TableName.BRONZE_RECORDS)
    if bronze_at is None:
        return found
    licenses = _source_licenses(warehouse)
    wanted = pa.table({"record_id": ids})
    for batch in warehouse.read_batches(
        TableName.BRONZE_RECORDS,
        columns=("record_id", "source", "source_uri", "license"),
        snapshot_id=bronze_at,
    ):
        rows = pa.Table.from_batches([batch])
        rows = rows.set_column(0, "record_id", rows.column("record_id").cast(pa.large_string()))
        matched = rows.join(wanted, "record_id", join_type="inner")
        found.records_in_bronze += matched.num_rows
        for row in matched.select(["source", "source_uri", "license"]).to_pylist():
            source = row["source"] or UNKNOWN
            found.by_source[source] += 1
            found.by_source_uri[row["source_uri"] or UNKNOWN] += 1
            found.by_license[row["license"] or licenses.get(source, UNKNOWN)] += 1
    return found


def check_licenses(warehouse: Warehouse, specs: list[str], policy: LicensePolicy) -> list[str]:
    """The policy violations of the tables ``specs`` (``TABLE@REF``) taken together."""
    present: set[str] = set()
    for spec in specs:
        present |= set(lineage(warehouse, spec).by_license)
    return policy.violations(present)


def corpus_licenses(warehouse: Warehouse, snapshots: dict[str, int | None]) -> Counter[str]:
    """Rows per license over the corpus tables that carry a ``license`` column (rejected
    records are not in the corpus, so ``silver.rejections`` does not count)."""
    licenses = _source_licenses(warehouse)
    counts: Counter[str] = Counter()
    for table, snapshot_id in snapshots.items():
        if snapshot_id is None or table == TableName.SILVER_REJECTIONS:
            continue
        names = warehouse.table(table).schema().as_arrow().names
        if "license" not in names:
            continue
        columns = ("license", "source") if "source" in names else ("license",)
        for batch in warehouse.read_batches(table, columns=columns, snapshot_id=snapshot_id):
            sources = batch.column("source").to_pylist() if "source" in names else None
            for i, value in enumerate(batch.column("license").to_pylist()):
                source = sources[i] if sources else None
                counts[value or licenses.get(source or "", UNKNOWN)] += 1
    return counts
