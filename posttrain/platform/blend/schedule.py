"""Which source each position of a blend's stream draws from: a pure function of the seed,
the position and how many rows each source has given so far.

Position ``k`` draws a uniform number ``u_k`` from a counter-based generator (SplitMix64
of seed and ``k``, so any position is computed directly, without replaying the ones
before) and picks, among the sources that still have rows, the one whose slice of the
cumulative normalised shares holds ``u_k``. Each draw takes the next row of that source,
so the stream's position is the sum of the per-source offsets, and the offsets alone
(with the seed) are the whole resume state.

Nothing here reads data: the schedule of a billion positions is computed in seconds, which
is how a rank skips the positions of other ranks, and how :func:`state_at` tells the
resume state after N rows without reading them.
"""

from __future__ import annotations

import numpy as np

from posttrain.platform.blend.spec import PinnedBlend
from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import ConfigError

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_MASK = (1 << 64) - 1
CHUNK = 1 << 16


class BlendState(FrozenConfig):
    """Where a blend's stream stands: rows taken so far from each source (by reference)
    under a seed, and the fingerprint of the pinned blend it belongs to."""

    blend: str
    seed: int
    offsets: dict[str, int]

    @property
    def position(self) -> int:
        """Positions of the stream consumed (every position takes one row of one source)."""
        return sum(self.offsets.values())


def _splitmix(values: np.ndarray) -> np.ndarray:
    z = values
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    mixed: np.ndarray = z ^ (z >> np.uint64(31))
    return mixed


def uniforms(seed: int, start: int, count: int) -> np.ndarray:
    """``u_k`` in [0, 1) for positions ``start .. start + count - 1`` (53-bit floats)."""
    key = int(_splitmix(np.array([seed & _MASK], dtype=np.uint64))[0])
    with np.errstate(over="ignore"):
        counters = np.arange(start, start + count, dtype=np.uint64) + np.uint64(1)
        mixed = _splitmix(counters * _GOLDEN + np.uint64(key))
    return (mixed >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class Schedule:
    """The draws of one pinned blend, advanced block by block from given offsets."""

    def __init__(self, pinned: PinnedBlend) -> None:
        self.seed = pinned.seed
        self.refs = [source.ref for source in pinned.sources]
        self.rows = np.array([source.rows for source in pinned.sources], dtype=np.int64)
        self.shares = np.array([source.share for source in pinned.sources], dtype=np.float64)
        self.mode = pinned.exhausted
        self.fingerprint = pinned.fingerprint()

    def initial(self) -> np.ndarray:
        """Offsets at the start of the stream: nothing taken."""
        return np.zeros(len(self.refs), dtype=np.int64)

    def advance(self, offsets: np.ndarray, count: int) -> np.ndarray:
        """The sources drawn at the next ``count`` positions after ``offsets`` (which are
        updated in place); fewer when the stream ends first, none once it has ended."""
        drawn: list[np.ndarray] = []
        left = count
        while left > 0:
            if self.mode == "cycle":
                alive = np.arange(len(self.refs))
            else:
                alive = np.flatnonzero(offsets < self.rows)
                if len(alive) == 0 or (self.mode == "stop" and len(alive) < len(self.refs)):
                    break
            position = int(offsets.sum())
            u = uniforms(self.seed, position, left)
            bounds = np.cumsum(self.shares[alive])
            picks = np.searchsorted(bounds / bounds[-1], u, side="right")
            picks = np.minimum(picks, len(alive) - 1)  # u just below 1 after rounding
            choices = alive[picks]
            if self.mode != "cycle":
                # Cut at the first draw from a source that has no row left: the rest of the
                # block is drawn again over the sources still alive.
                cut = len(choices)
                for source in alive:
                    hits = np.flatnonzero(choices == source)
                    remaining = int(self.rows[source] - offsets[source])
                    if len(hits) > remaining:
                        cut = min(cut, int(hits[remaining]))
                choices = choices[:cut]
            offsets += np.bincount(choices, minlength=len(self.refs))
            drawn.append(choices)
            left -= len(choices)
        return np.concatenate(drawn) if drawn else np.zeros(0, dtype=np.int64)

    def state(self, offsets: np.ndarray) -> BlendState:
        """``offsets`` as a :class:`BlendState`."""
        return BlendState(
            blend=self.fingerprint,
            seed=self.seed,
            offsets={ref: int(offset) for ref, offset in zip(self.refs, offsets, strict=True)},
        )

    def offsets_of(self, state: BlendState) -> np.ndarray:
        """The offsets a state holds, checked against this blend.

        Raises:
            ConfigError: the state belongs to another blend or seed, or names other sources.
        """
        if state.blend != self.fingerprint or state.seed != self.seed:
            raise ConfigError(
                f"this resume state belongs to another blend (blend {state.blend}, seed "
                f"{state.seed}); this one is blend {self.fingerprint}, seed {self.seed}"
            )
        if sorted(state.offsets) != sorted(self.refs):
            raise ConfigError(
                f"resume state names sources {sorted(state.offsets)}, the blend has "
                f"{sorted(self.refs)}"
            )
        offsets = np.array([state.offsets[ref] for ref in self.refs], dtype=np.int64)
        if (offsets < 0).any() or (self.mode != "cycle" and (offsets > self.rows).any()):
            raise ConfigError(
                f"resume state offsets {state.offsets} lie outside the sources' rows "
                f"{dict(zip(self.refs, self.rows.tolist(), strict=True))}"
            )
        return offsets


def state_at(pinned: PinnedBlend, position: int) -> BlendState:
    """The resume state after the first ``position`` positions of the whole stream (all
    ranks together), computed from the schedule without reading any data; past the end of
    a finite stream, the state at its end."""
    schedule = Schedule(pinned)
    offsets = schedule.initial()
    left = position
    while left > 0:
        step = min(left, CHUNK * 16)
        taken = len(schedule.advance(offsets, step))
        if taken < step:
            break
        left -= taken
    return schedule.state(offsets)
