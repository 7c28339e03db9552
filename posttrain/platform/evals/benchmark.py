"""What an evaluation benchmark is to posttrain, and how its ``eval.*`` table is seeded.

A :class:`Benchmark` names its table (a :class:`~posttrain.platform.schemas.TableSpec`
in the ``eval`` namespace), a loader that returns every item as Arrow with an ``item_id``
column, and — through the table property ``DECONTAM_COLUMNS_PROPERTY`` — which columns
are the benchmark text that training data must not contain.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from posttrain.platform.errors import ConfigError, InputFormatError
from posttrain.platform.lineage import CONFIG_HASH_KEY, Lineage
from posttrain.platform.schemas import DECONTAM_COLUMNS_PROPERTY, TableSpec
from posttrain.platform.warehouse import Warehouse

EVAL_NAMESPACE = "eval"
ITEM_ID = "item_id"


def _is_string(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_string(data_type) or pa.types.is_large_string(data_type))


def decontam_text_columns(
    schema: pa.Schema, properties: Mapping[str, str], *, table: str
) -> tuple[str, ...]:
    """The columns of an eval table whose text decontamination looks for.

    Named by the table property ``DECONTAM_COLUMNS_PROPERTY`` (comma-separated); without
    it, every string column except ``item_id``.

    Raises:
        ConfigError: the property names a column that is missing or not a string.
    """
    declared = properties.get(DECONTAM_COLUMNS_PROPERTY)
    if declared is None:
        return tuple(f.name for f in schema if f.name != ITEM_ID and _is_string(f.type))
    columns = tuple(name.strip() for name in declared.split(",") if name.strip())
    for name in columns:
        if name not in schema.names or not _is_string(schema.field(name).type):
            raise ConfigError(
                f"{table}: table property {DECONTAM_COLUMNS_PROPERTY}={declared!r} names "
                f"{name!r}, which is not a string column; string columns: "
                f"{[f.name for f in schema if _is_string(f.type)]}"
            )
    if not columns:
        raise ConfigError(f"{table}: table property {DECONTAM_COLUMNS_PROPERTY} names no column")
    return columns


def read_string_fields(source: Path, fields: tuple[str, ...]) -> dict[str, list[str]]:
    """The string ``fields`` of every object of a JSONL file (``.gz`` or plain), by column.

    Raises:
        InputFormatError: a line is not JSON or lacks one of the string fields (file and
            line named).
    """
    opener = gzip.open if source.suffix == ".gz" else open
    columns: dict[str, list[str]] = {name: [] for name in fields}
    with opener(source, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputFormatError(
                    source, "one JSON object per line", line=number, found=str(exc)
                ) from None
            missing = [name for name in fields if not isinstance(item.get(name), str)]
            if missing:
                raise InputFormatError(
                    source, f"string fields {list(fields)}", line=number, found=f"no {missing}"
                )
            for name in fields:
                columns[name].append(item[name])
    return columns


def content_hash(data: pa.Table) -> str:
    """First 16 hex digits of the SHA-256 of the rows as canonical JSON (order included)."""
    payload = json.dumps(data.to_pylist(), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Benchmark:
    """A benchmark whose items live in one ``eval.*`` table.

    Attributes:
        name: short name used in evidence and summaries, e.g. ``humaneval``.
        spec: the table it is stored in (namespace ``eval``, key ``item_id``).
        load: returns every item as an Arrow table with ``spec.schema``; no network.
    """

    name: str
    spec: TableSpec
    load: Callable[[], pa.Table]

    def __post_init__(self) -> None:
        if self.spec.namespace != EVAL_NAMESPACE or ITEM_ID not in self.spec.schema.names:
            raise ConfigError(
                f"benchmark {self.name!r}: its table must be eval.<name> with an {ITEM_ID!r} "
                f"column, got {self.spec.name} with columns {self.spec.schema.names}"
            )

    @property
    def table(self) -> str:
        return self.spec.name

    @property
    def text_columns(self) -> tuple[str, ...]:
        """Columns decontamination compares training text against."""
        return decontam_text_columns(self.spec.schema, self.spec.properties, table=self.table)


def seed_benchmark(warehouse: Warehouse, benchmark: Benchmark) -> int | None:
    """Write ``benchmark``'s items to its ``eval.*`` table; idempotent.

    The snapshot's config hash is the content hash of the items, so a second call with the
    same items writes nothing and returns the current snapshot id; changed items (or a
    table someone else wrote to) are overwritten.

    Returns:
        The snapshot id holding the benchmark items.
    """
    data = benchmark.load()
    digest = content_hash(data)
    if warehouse.exists(benchmark.table):
        if warehouse.snapshot_summary(benchmark.table).get(CONFIG_HASH_KEY) == digest:
            return warehouse.snapshot_id(benchmark.table)
    else:
        warehouse.ensure_table(benchmark.spec)
    lineage = Lineage(stage=f"seed {benchmark.table}", config_hash=digest)
    return warehouse.overwrite(benchmark.table, data, lineage)
