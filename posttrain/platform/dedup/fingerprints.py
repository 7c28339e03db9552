"""The per-batch dedup step: exact hash and MinHash signature of every row's text.

:class:`FingerprintStep` is the only part of dedup that reads the texts, so it is the part
that runs on Ray workers (through :meth:`Executor.map_batches`); the driver then works on
hashes and signatures alone. Each row's fingerprint depends only on its own text, never
on the batch it arrived in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.dedup._ascii import HAS_NATIVE, ascii_normalize, native_ascii_normalize
from posttrain.platform.dedup.config import DedupConfig
from posttrain.platform.dedup.exact import exact_hashes
from posttrain.platform.dedup.minhash import shingle_hashes, signatures, word_hashes
from posttrain.platform.dedup.normalize import non_ascii_rows, unicode_normalize
from posttrain.platform.messages import TextView, conversation_text
from posttrain.platform.steps import StepResult, empty_rejections


def is_messages_type(data_type: pa.DataType) -> bool:
    """True for a ``list<struct<role, content, ...>>`` column (a conversation)."""
    if not (pa.types.is_list(data_type) or pa.types.is_large_list(data_type)):
        return False
    item = data_type.value_type
    return pa.types.is_struct(item) and {"role", "content"} <= {f.name for f in item}


def fingerprint_schema(num_perm: int) -> pa.Schema:
    """Schema of a :class:`FingerprintStep` result: raw uint32 signature bytes, no header."""
    return pa.schema(
        [
            pa.field("record_id", pa.string(), nullable=False),
            pa.field("exact_hash", pa.string()),
            pa.field("signature", pa.binary(4 * num_perm)),
        ]
    )


@dataclass(frozen=True)
class FingerprintStep:
    """Maps a batch with ``record_id`` and a text column to its fingerprints.

    Args:
        config: n-gram size, signature slots, seed and the conversation text view.
        text_column: a string column, or a messages column (``list<struct<role,
            content, ...>>``) whose text is taken with ``config.text_view``.
    """

    config: DedupConfig
    text_column: str

    def texts(self, batch: pa.RecordBatch) -> pa.Array:
        """The text each row is compared on."""
        column = batch.column(self.text_column)
        if not is_messages_type(column.type):
            return column.cast(pa.string())
        view = TextView(self.config.text_view)
        return pa.array(
            [
                None if messages is None else conversation_text(messages, view)
                for messages in column.to_pylist()
            ],
            type=pa.string(),
        )

    def _sign(
        self, forms: pa.Array, hashes: np.ndarray, word_offsets: np.ndarray
    ) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        """Exact hashes, signature rows and has-words flags of normalized texts, from their
        word hashes (flat) and each text's offsets into them."""
        shingles, shingle_offsets = shingle_hashes(hashes, word_offsets, self.config.ngram)
        rows = signatures(shingles, shingle_offsets, self.config.num_perm, self.config.seed)
        return exact_hashes(forms), rows, np.diff(word_offsets) > 0

    name = "dedup fingerprints"

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        """The stage contract: one fingerprint row per input row, in order."""
        if isinstance(batch, pa.Table):
            batch = pa.record_batch(
                [column.combine_chunks() for column in batch.columns], schema=batch.schema
            )
        return StepResult(
            kept=pa.Table.from_batches([self.sign(batch)]), rejected=empty_rejections()
        )

    def sign(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``record_id``, ``exact_hash`` and raw ``signature`` of every row of ``batch``."""
        texts = self.texts(batch)
        # The byte-level ASCII path runs over every row (it is cheap, and copying the ASCII
        # rows out would cost more); rows with other characters are then redone by the
        # Unicode rules and replaced.
        hashes, rows, has_words = self._sign(*_ascii_words_hashed(texts))
        other = non_ascii_rows(texts)
        if len(other):
            redone = self._sign(*_words_hashed(*unicode_normalize(texts.take(pa.array(other)))))
            is_other = np.zeros(len(texts), dtype=bool)
            is_other[other] = True
            hashes = pc.replace_with_mask(hashes, pa.array(is_other), redone[0])
            rows[other], has_words[other] = redone[1], redone[2]
        width = 4 * self.config.num_perm
        packed = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(width),
            len(rows),
            [pa.array(has_words).buffers()[1], pa.py_buffer(rows.astype("<u4").tobytes())],
        )
        return pa.record_batch(
            [batch.column("record_id").cast(pa.string()), hashes, packed],
            schema=fingerprint_schema(self.config.num_perm),
        )


def _words_hashed(
    forms: pa.Array, flat_words: pa.Array, word_offsets: np.ndarray
) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    return forms, word_hashes(flat_words), word_offsets


def _ascii_words_hashed(texts: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Normal forms, word hashes and word offsets by the ASCII rules: in C where it was
    built (the same numbers, a fraction of the time), else with numpy."""
    if HAS_NATIVE:
        return native_ascii_normalize(texts)
    return _words_hashed(*ascii_normalize(texts))
