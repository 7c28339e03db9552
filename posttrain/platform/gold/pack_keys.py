"""Packed tables keyed by what made them: tokenizer, chat template, mask policy, length.

``gold.sft_packed`` holds one *packing* per :class:`PackKey`: its rows carry the key in the
``pack_key`` column (an identity partition, so each packing lives in files of its own), and
``lineage.pack_keys`` says, per key, which tokenizer (name and hash of its vocab and rules),
which chat template (hash), which mask policy and which sequence length made it, and which
``gold.sft`` snapshot it packed. So the packings of two base models coexist, a trainer
selects one by its key, and re-packing the same ``gold.sft`` snapshot with an existing key
changes nothing: no new snapshot is written.

Example:
    >>> key = pack_key(GoldSftConfig())  # doctest: +SKIP
    >>> packed = read_packing(warehouse, key.value)  # doctest: +SKIP
    >>> Dataset.from_pandas(packed.to_pandas())  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.expressions import EqualTo, IsNull, Or, Reference
from pyiceberg.expressions.literals import literal

from posttrain.platform.errors import PosttrainError
from posttrain.platform.gold.tokenize import chat_tokenizer
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import LINEAGE_PACK_KEYS, TableName
from posttrain.platform.warehouse import Warehouse

if TYPE_CHECKING:
    from pyiceberg.expressions import BooleanExpression

    from posttrain.platform.gold.build import GoldSftConfig

SFT_PACKED = TableName.GOLD_SFT_PACKED
PACK_KEYS = TableName.LINEAGE_PACK_KEYS
KEY_CHARS = 16


class UnknownPackKeyError(PosttrainError):
    """No packing of ``gold.sft_packed`` has this key."""

    def __init__(self, key: str, known: list[str]) -> None:
        listed = ", ".join(known) or "none yet"
        super().__init__(f"no packing with pack_key {key!r} in {SFT_PACKED}; known: {listed}")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class PackKey:
    """The parts that decide a packing's bytes, and the key they hash to."""

    tokenizer: str
    tokenizer_hash: str  # the tokenizer's vocab, merges, normalizer, special tokens
    chat_template_hash: str
    mask_policy: str  # which tokens are trained on, and how long conversations are cut
    seq_length: int
    overflow: str

    @property
    def value(self) -> str:
        """16 hex digits of the SHA-256 of every part (the name included: it is what a
        person selects by, and two names for the same files are two packings)."""
        return _sha256(json.dumps(asdict(self), sort_keys=True))[:KEY_CHARS]


def pack_key(config: GoldSftConfig) -> PackKey:
    """The key of packing ``gold.sft`` with ``config`` (loads the tokenizer once).

    Raises:
        ConfigError: the tokenizer cannot be loaded or has no usable chat template.
    """
    tokenizer = chat_tokenizer(config.tokenize)
    tokenize = config.tokenize
    mask = f"{tokenize.mask_policy};max_length={tokenize.max_length};keep={tokenize.truncation}"
    return PackKey(
        tokenizer=tokenize.tokenizer,
        tokenizer_hash=tokenizer.vocab_hash,
        chat_template_hash=_sha256(str(tokenizer.tokenizer.chat_template)),
        mask_policy=mask,
        seq_length=config.pack.seq_length,
        overflow=str(config.pack.overflow),
    )


def key_filter(key: str) -> BooleanExpression:
    """The rows of one packing; rows from before packings were keyed (no key) go with it."""
    return Or(
        EqualTo(term=Reference("pack_key"), value=literal(key)), IsNull(term=Reference("pack_key"))
    )


def only_key(key: str) -> BooleanExpression:
    """Exactly the rows of the packing ``key``."""
    return EqualTo(term=Reference("pack_key"), value=literal(key))


@dataclass(frozen=True)
class PackingRecord:
    """A row of ``lineage.pack_keys``."""

    key: PackKey
    source_snapshot_id: int | None
    packed_snapshot_id: int | None
    packs: int
    stats: dict[str, int | float]
    dropped_record_ids: list[str]


def recorded(warehouse: Warehouse, key: str) -> PackingRecord | None:
    """What ``lineage.pack_keys`` says about the packing ``key``, if it was ever written."""
    if not warehouse.exists(PACK_KEYS):
        return None
    rows = warehouse.read(PACK_KEYS, row_filter=only_key(key)).to_pylist()
    if not rows:
        return None
    row = rows[0]
    return PackingRecord(
        key=PackKey(
            tokenizer=row["tokenizer"],
            tokenizer_hash=row["tokenizer_hash"],
            chat_template_hash=row["chat_template_hash"],
            mask_policy=row["mask_policy"],
            seq_length=row["seq_length"],
            overflow=row["overflow"],
        ),
        source_snapshot_id=row["source_snapshot_id"],
        packed_snapshot_id=row["packed_snapshot_id"],
        packs=row["packs"] or 0,
        stats=json.loads(row["stats"] or "{}"),
        dropped_record_ids=list(row["dropped_record_ids"] or []),
    )


def record(warehouse: Warehouse, entry: PackingRecord, lineage: Lineage) -> None:
    """Write (or replace) the ``lineage.pack_keys`` row of ``entry``'s key."""
    row = {
        **asdict(entry.key),
        "pack_key": entry.key.value,
        "source_snapshot_id": entry.source_snapshot_id,
        "packed_snapshot_id": entry.packed_snapshot_id,
        "packs": entry.packs,
        "stats": json.dumps(entry.stats, sort_keys=True),
        "dropped_record_ids": entry.dropped_record_ids,
        "updated_at": datetime.now(UTC),
    }
    table = pa.Table.from_pylist([row], schema=LINEAGE_PACK_KEYS)
    warehouse.overwrite(PACK_KEYS, table, lineage, where=only_key(entry.key.value))


def packings(warehouse: Warehouse) -> pa.Table:
    """Every packing of ``gold.sft_packed`` (``lineage.pack_keys``), sorted by key."""
    if not warehouse.exists(PACK_KEYS):
        return LINEAGE_PACK_KEYS.empty_table()
    table = warehouse.read(PACK_KEYS)
    return table.take(pc.sort_indices(table, [("pack_key", "ascending")]))


def read_packing(warehouse: Warehouse, key: str, *, snapshot_id: int | None = None) -> pa.Table:
    """The rows of one packing in TRL's padding-free layout, ``pack_id`` order, without the
    ``pack_key`` column: what ``SFTTrainer(padding_free=True)`` takes as it is.

    Raises:
        UnknownPackKeyError: no packing has this key.
    """
    known = packings(warehouse)["pack_key"].to_pylist()
    if key not in known:
        raise UnknownPackKeyError(key, known)
    rows = warehouse.read(SFT_PACKED, row_filter=only_key(key), snapshot_id=snapshot_id)
    rows = rows.take(pc.sort_indices(rows, [("pack_id", "ascending")]))
    return rows.drop_columns(["pack_key"])
