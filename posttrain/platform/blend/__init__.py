"""A deterministic, resumable weighted blend of several pinned tables, streamed to a trainer.

``pin_blend`` resolves a :class:`BlendSpec` (table references and weights, a seed) once to
exact snapshot ids: a :class:`PinnedBlend`, plain JSON that an experiment manifest stores
and replays. ``iter_blend`` / ``iter_blend_batches`` stream it from Iceberg in Arrow
batches, and :class:`BlendDataset` hands it to PyTorch, split by data-parallel rank and
DataLoader worker, with per-source offsets as its resume state.

    >>> spec = BlendSpec(sources=[BlendSource(ref="gold.sft@v3", weight=3),
    ...                           BlendSource(ref="snapshots.agent_pos", weight=1)], seed=7)
    >>> pinned = pin_blend(warehouse, spec)  # doctest: +SKIP
    >>> dataset = BlendDataset(warehouse.settings, pinned, rank=0, world_size=2)  # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from posttrain.platform._lazy import lazy_exports

if TYPE_CHECKING:
    from posttrain.platform.blend.dataset import BlendDataset
    from posttrain.platform.blend.schedule import BlendState, state_at
    from posttrain.platform.blend.spec import (
        BlendSource,
        BlendSpec,
        PinnedBlend,
        PinnedSource,
        pin_blend,
    )
    from posttrain.platform.blend.stream import iter_blend, iter_blend_batches

# torch is imported only when BlendDataset is first used (it comes with the `train` extra).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "dataset": ["BlendDataset"],
        "schedule": ["BlendState", "state_at"],
        "spec": ["BlendSource", "BlendSpec", "PinnedBlend", "PinnedSource", "pin_blend"],
        "stream": ["iter_blend", "iter_blend_batches"],
    },
)

__all__ = [
    "BlendDataset",
    "BlendSource",
    "BlendSpec",
    "BlendState",
    "PinnedBlend",
    "PinnedSource",
    "iter_blend",
    "iter_blend_batches",
    "pin_blend",
    "state_at",
]
