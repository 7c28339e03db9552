"""Best-fit-decreasing packing of tokenized conversations into TRL's padding-free layout.

Each output row (``gold.sft_packed``) is one training sequence of at most ``seq_length``
tokens holding whole conversations back to back: ``input_ids`` and ``assistant_masks``
concatenated, ``seq_lengths`` the length of each conversation (TRL's collator turns them
into position ids that restart at every conversation, so attention never crosses one),
``record_ids`` the conversation behind each length.

Best fit decreasing (as in TRL's ``pack_dataset(strategy="bfd")`` and "Fewer Truncations
Improve Language Modeling", arXiv:2404.10830): take sequences longest first, put each in
the open pack with the least room that still fits it, else open a new pack. Ties are broken
by ``record_id``, so the packs do not depend on input order or on how tokenization was
batched: same tokenized rows and config, same bytes.

Example:
    >>> import pyarrow as pa
    >>> tokenized = pa.table({
    ...     "record_id": ["a", "b", "c"],
    ...     "input_ids": [[1, 2, 3], [4, 5], [6]],
    ...     "assistant_masks": [[0, 1, 1], [0, 1], [1]],
    ... })
    >>> result = pack_sequences(tokenized, PackConfig(seq_length=4))
    >>> result.packs.select(["input_ids", "seq_lengths", "record_ids"]).to_pylist()[0]
    {'input_ids': [1, 2, 3, 6], 'seq_lengths': [3, 1], 'record_ids': ['a', 'c']}
    >>> result.stats.efficiency
    0.75
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import PosttrainError
from posttrain.platform.schemas import PACKED_SEQUENCES

_INT32_MAX = np.iinfo(np.int32).max


class PackingError(PosttrainError):
    """The table to pack is not tokenized conversations keyed by a unique ``record_id``."""


class Overflow(StrEnum):
    """What happens to a conversation longer than ``seq_length``."""

    TRUNCATE = "truncate"  # keep its first seq_length tokens (TRL "bfd")
    SPLIT = "split"  # cut it into seq_length pieces packed separately (TRL "bfd_split")


class PackConfig(FrozenConfig):
    """How tokenized conversations are packed.

    ``overflow`` defaults to ``truncate``: a split-off piece becomes a sequence of its own,
    with positions restarting at zero and no view of the conversation it came from, so the
    model would learn assistant text detached from its prompt. Truncation keeps every
    trained token in context, and TRL recommends it for SFT; choose ``split`` only for
    corpora where no token may be lost.

    Attributes:
        seq_length: tokens per packed sequence.
        overflow: ``truncate`` (default) or ``split``.
    """

    seq_length: int = Field(default=2048, gt=0)
    overflow: Overflow = Overflow.TRUNCATE


@dataclass(frozen=True)
class PackStats:
    """What packing did, for asset metadata and logs."""

    seq_length: int
    examples: int  # tokenized conversations in
    sequences: int  # sequences placed in packs (more than examples after splits)
    packs: int
    tokens: int  # real tokens in packs
    truncated_examples: int
    split_examples: int
    dropped_examples: int  # no assistant token left within seq_length
    dropped_tokens: int  # cut by truncation or in dropped pieces

    @property
    def efficiency(self) -> float:
        """Real tokens over pack capacity: ``tokens / (packs × seq_length)``."""
        return self.tokens / (self.packs * self.seq_length) if self.packs else 0.0

    def as_metadata(self) -> dict[str, int | float]:
        """Flat figures for Dagster metadata, efficiency included."""
        return {**asdict(self), "efficiency": round(self.efficiency, 6)}


@dataclass(frozen=True)
class PackResult:
    """Packed rows (``gold.sft_packed`` without ``pack_key``), the stats, who was left out."""

    packs: pa.Table
    stats: PackStats
    dropped_record_ids: list[str]


def best_fit_decreasing(lengths: npt.NDArray[np.int64], capacity: int) -> npt.NDArray[np.int64]:
    """The pack of every item, items taken in the given (non-increasing) order.

    Each item goes to the open pack with the least free room that still holds it (the
    earliest such pack on ties), or to a new pack. Open packs are indexed by free room in
    a bitset (a Python int, bit ``r`` set when some pack has exactly ``r`` tokens free), so
    finding the best fit is one shift and one lowest-set-bit, ``O(capacity / 64)`` word
    operations in C, instead of a segment-tree walk in Python.

    Args:
        lengths: item sizes, each in ``[1, capacity]``, sorted longest first.
        capacity: pack size.

    Returns:
        Pack index per item; packs are numbered in the order they were opened.

    Example:
        >>> best_fit_decreasing(np.array([5, 4, 3, 2, 1]), 6).tolist()
        [0, 1, 2, 1, 0]
    """
    free_bits = 0
    packs_by_free: defaultdict[int, deque[int]] = defaultdict(deque)
    pack_of: list[int] = []
    opened = 0
    # Sizes never grow, so a pack with less room than the last item can take nothing more.
    smallest = int(lengths[-1]) if lengths.size else 0
    for length in lengths.tolist():
        fitting = free_bits >> length
        if fitting:
            free = length + (fitting & -fitting).bit_length() - 1
            queue = packs_by_free[free]
            pack = queue.popleft()
            if not queue:
                free_bits ^= 1 << free
        else:
            pack, free = opened, capacity
            opened += 1
        pack_of.append(pack)
        left = free - length
        if left >= smallest:
            queue = packs_by_free[left]
            if not queue:
                free_bits |= 1 << left
            queue.append(pack)
    return np.array(pack_of, dtype=np.int64)


@dataclass(frozen=True)
class _Pieces:
    """The sequences to pack: ``[start, start + length)`` ranges of the flat token arrays."""

    row: npt.NDArray[np.int64]  # input row each piece comes from
    fragment: npt.NDArray[np.int64]  # 0 for the first piece of a row
    start: npt.NDArray[np.int64]
    length: npt.NDArray[np.int64]

    def take(self, selection: npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> _Pieces:
        """The pieces picked by a boolean mask or an index array, in that order."""
        return _Pieces(
            self.row[selection],
            self.fragment[selection],
            self.start[selection],
            self.length[selection],
        )


def _pieces(row_starts: npt.NDArray[np.int64], config: PackConfig) -> _Pieces:
    lengths = np.diff(row_starts)
    rows = np.arange(lengths.size, dtype=np.int64)
    size = config.seq_length
    if config.overflow is Overflow.TRUNCATE:
        return _Pieces(rows, np.zeros_like(rows), row_starts[:-1], np.minimum(lengths, size))
    counts = np.maximum(1, -(-lengths // size))
    row = np.repeat(rows, counts)
    first_piece = np.repeat(np.cumsum(counts) - counts, counts)
    fragment = np.arange(row.size, dtype=np.int64) - first_piece
    offset = fragment * size
    return _Pieces(row, fragment, row_starts[row] + offset, np.minimum(size, lengths[row] - offset))


def _flat(column: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[Any]]:
    """Row boundaries (length n + 1) and the flat values of a list column."""
    array = column.combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(array), 0).to_numpy().astype(np.int64)
    starts = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    return starts, array.flatten().to_numpy(zero_copy_only=False)


def _check_input(tokenized: pa.Table) -> None:
    missing = {"record_id", "input_ids", "assistant_masks"} - set(tokenized.column_names)
    if missing:
        raise PackingError(
            f"cannot pack a table without {sorted(missing)}; expected tokenized conversations "
            f"(columns record_id, input_ids, assistant_masks), found {tokenized.column_names}"
        )
    counts = pc.value_counts(tokenized.column("record_id").combine_chunks())
    repeated = pc.filter(counts, pc.greater(counts.field("counts"), 1))
    if len(repeated):
        raise PackingError(
            f"record_id {repeated[0]['values'].as_py()!r} appears "
            f"{repeated[0]['counts'].as_py()} times; packing needs one row per conversation"
        )


def _place(
    pieces: _Pieces, record_ids: pa.Array, seq_length: int
) -> tuple[_Pieces, npt.NDArray[np.int64]]:
    """Pieces in pack order (each pack's in the order placed), and the pieces per pack."""
    order = pc.sort_indices(
        pa.table(
            {
                "length": pieces.length,
                "record_id": record_ids.take(pieces.row),
                "fragment": pieces.fragment,
            }
        ),
        sort_keys=[("length", "descending"), ("record_id", "ascending"), ("fragment", "ascending")],
    ).to_numpy()
    pack_of = best_fit_decreasing(pieces.length[order], seq_length)
    placed = pieces.take(order[np.argsort(pack_of, kind="stable")])
    return placed, np.bincount(pack_of, minlength=int(pack_of.max(initial=-1)) + 1)


def pack_sequences(tokenized: pa.Table, config: PackConfig) -> PackResult:
    """Pack tokenized conversations into ``gold.sft_packed`` rows by best fit decreasing.

    Args:
        tokenized: ``record_id``, ``input_ids``, ``assistant_masks`` (as made by
            :func:`~posttrain.platform.gold.tokenize.tokenize_conversations`), one row per
            conversation, in any order.
        config: sequence length and what to do with longer conversations.

    Returns:
        The packs (``pack_id`` 0, 1, ... in the order packs were opened, fullest first),
        their :class:`PackStats`, and the conversations left out because no assistant token
        remained within ``seq_length``.

    Raises:
        PackingError: a column is missing, a ``record_id`` repeats, or ids and masks differ
            in length.
    """
    _check_input(tokenized)
    row_starts, ids = _flat(tokenized.column("input_ids"))
    mask_starts, masks = _flat(tokenized.column("assistant_masks"))
    if not np.array_equal(row_starts, mask_starts):
        raise PackingError("input_ids and assistant_masks differ in length in some row")
    record_ids = tokenized.column("record_id").combine_chunks()
    pieces = _pieces(row_starts, config)
    trained_at = np.flatnonzero(masks)  # sorted positions of trainable tokens
    trainable = np.searchsorted(trained_at, pieces.start + pieces.length) - np.searchsorted(
        trained_at, pieces.start
    )
    kept = pieces.take(trainable > 0)
    placed, pieces_per_pack = _place(kept, record_ids, config.seq_length)
    packs = _packs_table(ids, masks, record_ids, placed, pieces_per_pack)

    lengths = np.diff(row_starts)
    kept_rows = np.zeros(lengths.size, dtype=bool)
    kept_rows[kept.row] = True
    too_long = int((lengths > config.seq_length).sum())
    stats = PackStats(
        seq_length=config.seq_length,
        examples=tokenized.num_rows,
        sequences=int(kept.row.size),
        packs=int(pieces_per_pack.size),
        tokens=int(kept.length.sum()),
        truncated_examples=too_long if config.overflow is Overflow.TRUNCATE else 0,
        split_examples=too_long if config.overflow is Overflow.SPLIT else 0,
        dropped_examples=int((~kept_rows).sum()),
        dropped_tokens=int(lengths.sum() - kept.length.sum()),
    )
    dropped = record_ids.filter(pa.array(~kept_rows)).to_pylist()
    return PackResult(packs=packs, stats=stats, dropped_record_ids=dropped)


def _gather(values: npt.NDArray[Any], pieces: _Pieces) -> npt.NDArray[Any]:
    """The pieces' token ranges of ``values``, back to back.

    Slicing per piece copies each range once and needs no index array as long as the
    corpus (a fancy index would cost eight bytes per token).
    """
    ranges = zip(pieces.start.tolist(), pieces.length.tolist(), strict=True)
    return np.concatenate([values[:0], *(values[start : start + n] for start, n in ranges)])


def _packs_table(
    ids: npt.NDArray[Any],
    masks: npt.NDArray[Any],
    record_ids: pa.Array,
    placed: _Pieces,
    pieces_per_pack: npt.NDArray[np.int64],
) -> pa.Table:
    total = int(placed.length.sum())
    if total > _INT32_MAX:
        raise PackingError(
            f"{total:,} tokens exceed one Arrow list column; pack the corpus in parts"
        )
    piece_bounds = np.zeros(pieces_per_pack.size + 1, dtype=np.int64)
    np.cumsum(pieces_per_pack, out=piece_bounds[1:])
    token_starts = np.zeros(placed.length.size + 1, dtype=np.int64)
    np.cumsum(placed.length, out=token_starts[1:])
    token_bounds = token_starts[piece_bounds]
    token_offsets = pa.array(token_bounds.astype(np.int32))
    piece_offsets = pa.array(piece_bounds.astype(np.int32))
    return pa.Table.from_arrays(
        [
            pa.array(np.arange(pieces_per_pack.size, dtype=np.int64)),
            # numpy arrays of the right dtype become Arrow arrays without a copy; passing
            # the type to pa.array instead goes through a (slow) cast.
            pa.ListArray.from_arrays(
                token_offsets, pa.array(_gather(ids, placed).astype(np.int32, copy=False))
            ),
            pa.ListArray.from_arrays(
                token_offsets, pa.array(_gather(masks, placed).astype(np.int8, copy=False))
            ),
            pa.ListArray.from_arrays(piece_offsets, pa.array(placed.length.astype(np.int32))),
            pa.ListArray.from_arrays(piece_offsets, record_ids.take(placed.row)),
            pa.array(np.diff(token_bounds).astype(np.int32)),
        ],
        schema=PACKED_SEQUENCES,
    )
