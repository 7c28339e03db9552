"""A pinned blend as a PyTorch ``IterableDataset``: one rank's share, split further among
DataLoader workers, resumable from per-source offsets.

torch comes with the ``train`` extra (``pip install 'posttrain[train]'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from posttrain.platform.blend.schedule import BlendState, Schedule, state_at
from posttrain.platform.blend.spec import PinnedBlend
from posttrain.platform.blend.stream import DEFAULT_BLOCK_ROWS, RowFormat, Shard, blocks, rows_of
from posttrain.platform.settings import WarehouseSettings
from posttrain.platform.warehouse import Warehouse


class BlendDataset(IterableDataset[dict[str, Any]]):
    """Rows of a pinned blend as dicts (``_source`` names the reference a row came from),
    this rank's share only.

    The stream is cut into blocks of ``batch_rows`` positions, dealt to ranks in turn and,
    within a rank, to DataLoader workers in turn (see :mod:`.stream`): across every rank and
    worker each row of the stream comes out exactly once. With DataLoader workers, set
    ``batch_rows`` to the DataLoader's batch size: the DataLoader then hands out the rank's
    rows in stream order, one worker's block per batch.

    Resuming: :meth:`state_dict` is the seed and per-source offsets after the last row this
    object yielded (iterated in this process, ``num_workers=0``); :meth:`state_after` is the
    state after this rank consumed N rows from the start, whoever read them (use it with
    DataLoader workers: N = steps × batch size). :meth:`load_state_dict` makes the next
    iteration continue from there: exactly the rows an uninterrupted run would have yielded
    next.

    Args:
        warehouse_settings: how to reach the warehouse (the dataset pickles into workers and
            each opens its own catalog).
        pinned: the blend, from :func:`~posttrain.platform.blend.pin_blend` or a manifest.
        rank: this process's data-parallel rank, ``0 <= rank < world_size``.
        world_size: number of data-parallel ranks.
        batch_rows: positions per block (and per Arrow batch read).
        row_format: ``python`` (plain values), or ``numpy``: list columns of numbers
            (``input_ids``, ``assistant_masks``, ...) as read-only NumPy views, several
            times faster for packed tables.
    """

    def __init__(
        self,
        warehouse_settings: WarehouseSettings,
        pinned: PinnedBlend,
        *,
        rank: int = 0,
        world_size: int = 1,
        batch_rows: int = DEFAULT_BLOCK_ROWS,
        row_format: RowFormat = "python",
    ) -> None:
        Shard(rank, world_size)  # validate now, not in a worker
        self.settings = warehouse_settings
        self.pinned = pinned
        self.rank = rank
        self.world_size = world_size
        self.batch_rows = batch_rows
        self.row_format: RowFormat = row_format
        self._start: BlendState | None = None
        self._schedule = Schedule(pinned)
        # Progress of the current iteration: offsets before the current block, its draws,
        # and how many of its rows were handed out.
        self._before: np.ndarray = self._schedule.initial()
        self._choices: np.ndarray = np.zeros(0, dtype=np.int64)
        self._yielded = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        shard = Shard(
            self.rank,
            self.world_size,
            info.id if info is not None else 0,
            info.num_workers if info is not None else 1,
        )
        warehouse = Warehouse(self.settings)
        start = self._start
        self._before = (
            self._schedule.offsets_of(start) if start is not None else self._schedule.initial()
        )
        self._choices, self._yielded = np.zeros(0, dtype=np.int64), 0
        for block in blocks(
            warehouse, self.pinned, start=start, shard=shard, block_rows=self.batch_rows
        ):
            self._before, self._choices, self._yielded = block.before, block.choices, 0
            for row in rows_of(block.batch, self.row_format):
                self._yielded += 1
                yield row

    def state_dict(self) -> dict[str, Any]:
        """Seed and per-source offsets after the last row this object yielded (JSON-able)."""
        offsets = self._before + np.bincount(
            self._choices[: self._yielded], minlength=len(self._before)
        )
        return self._schedule.state(offsets).model_dump(mode="json")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the next iteration from ``state`` (from :meth:`state_dict` or
        :meth:`state_after`).

        Raises:
            ConfigError: the state belongs to another blend or seed.
        """
        parsed = BlendState.model_validate(state)
        self._before = self._schedule.offsets_of(parsed)
        self._choices, self._yielded = np.zeros(0, dtype=np.int64), 0
        self._start = parsed

    def state_after(self, rows: int) -> dict[str, Any]:
        """The state once this rank has consumed its first ``rows`` rows of the stream
        (counted from the start of the stream, in the order its blocks come), computed from
        the schedule without reading data."""
        block_rows, world = self.batch_rows, self.world_size
        full, part = divmod(rows, block_rows)
        if part:
            position = (full * world + self.rank) * block_rows + part
        elif full:
            position = ((full - 1) * world + self.rank + 1) * block_rows
        else:
            position = 0
        return state_at(self.pinned, position).model_dump(mode="json")
