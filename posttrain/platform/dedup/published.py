"""What is already published, as dedup needs it: ids, exact hashes and signatures.

New data is deduplicated against the published rows of ``silver.conversations`` through
their stored ``exact_hash`` and ``minhash`` columns, so the published texts are never read
again. Published records always win: they keep their place, and a new record that
matches one is rejected with the published ``record_id`` as ``kept_record_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.dedup.config import DedupConfig
from posttrain.platform.dedup.minhash import decode_signatures
from posttrain.platform.errors import ConfigError, InputFormatError
from posttrain.platform.schemas import TableName

PUBLISHED_COLUMNS = ("record_id", "exact_hash", "minhash")


@dataclass(frozen=True)
class PublishedIndex:
    """Published records sorted by ``record_id``, with their exact hashes and signatures.

    Build it with :meth:`from_table` from the published silver rows; rows with neither an
    exact hash nor a signature cannot match anything and are left out.
    """

    record_ids: pa.Array
    exact_hashes: pa.Array
    rows: np.ndarray  # (n, num_perm) uint32 MinHash slots
    has_signature: np.ndarray  # (n,) bool

    def __len__(self) -> int:
        return len(self.record_ids)

    @classmethod
    def empty(cls, config: DedupConfig) -> PublishedIndex:
        """An index with no records (the first batch ever)."""
        return cls(
            record_ids=pa.array([], pa.string()),
            exact_hashes=pa.array([], pa.string()),
            rows=np.zeros((0, config.num_perm), dtype=np.uint32),
            has_signature=np.zeros(0, dtype=bool),
        )

    @classmethod
    def from_table(
        cls, published: pa.Table, config: DedupConfig, *, name: str = TableName.SILVER_CONVERSATIONS
    ) -> PublishedIndex:
        """The index of ``published`` (columns ``record_id``, ``exact_hash``, ``minhash``).

        Raises:
            InputFormatError: a column is missing.
            ConfigError: the stored signatures were made with other MinHash settings.
        """
        missing = [column for column in PUBLISHED_COLUMNS if column not in published.column_names]
        if missing:
            raise InputFormatError(
                name, f"columns {', '.join(PUBLISHED_COLUMNS)}", found=f"no {', '.join(missing)}"
            )
        usable = published.select(list(PUBLISHED_COLUMNS)).filter(
            pc.or_(pc.is_valid(published["exact_hash"]), pc.is_valid(published["minhash"]))
        )
        usable = usable.take(pc.sort_indices(usable, [("record_id", "ascending")]))
        try:
            rows, valid = decode_signatures(usable["minhash"], config)
        except ValueError as error:
            raise ConfigError(
                f"{name}.minhash: {error}. Rebuild the published signatures with the current "
                "dedup settings, or run dedup with the settings they were made with."
            ) from error
        return cls(
            record_ids=usable["record_id"].combine_chunks().cast(pa.string()),
            exact_hashes=usable["exact_hash"].combine_chunks().cast(pa.string()),
            rows=rows,
            has_signature=valid,
        )
