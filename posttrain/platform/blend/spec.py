"""What a blend is: sources and weights (:class:`BlendSpec`), and the same pinned to exact
snapshot ids (:class:`PinnedBlend`), which is what an experiment manifest stores.

Weights are relative: each must be a positive, finite number, and a source's share of the
stream is its weight over the sum (``3`` and ``1`` mean 75 % and 25 %, as do ``0.75`` and
``0.25``). :func:`pin_blend` records both the weight as written and the normalised share.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import field_validator, model_validator

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import ConfigError
from posttrain.platform.refs import PinnedSnapshot, TableRef, arrow_schema, resolve, stream_batches
from posttrain.platform.warehouse import Warehouse

Exhausted = Literal["drop", "stop", "cycle"]
"""What happens when a source runs out of rows (see :class:`BlendSpec`)."""

SCHEDULE = "splitmix64-v1"
"""The name of the interleaving rule (:mod:`.schedule`); stored in every pinned blend so a
manifest written today is refused, not silently re-interpreted, if the rule ever changes."""


class BlendSource(FrozenConfig):
    """One table reference of a blend and its relative weight.

    ``ref`` is anything :func:`posttrain.platform.refs.resolve` takes: ``gold.sft``
    (pinned to its current snapshot when the blend is pinned), ``gold.sft@v3`` (a corpus
    version), ``gold.sft@4242`` (a snapshot id), ``gold.sft@my-tag`` (a tag or branch) or a
    filtered snapshot (``snapshots.agent_pos``, or ``snapshots.agent_pos@agent-pos``).
    """

    ref: str
    weight: float = 1.0

    @field_validator("ref")
    @classmethod
    def _ref_is_a_table_reference(cls, ref: str) -> str:
        try:
            TableRef.parse(ref)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return ref.strip()

    @model_validator(mode="after")
    def _weight_is_positive(self) -> BlendSource:
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(
                f"source {self.ref!r}: weight must be a positive, finite number "
                f"(weights are relative), got {self.weight!r}"
            )
        return self


class BlendSpec(FrozenConfig):
    """Sources with weights, a seed, the columns to read and the epoch rule.

    ``exhausted`` says what happens when a source runs out of rows:

    * ``drop`` (default): the source leaves the blend and the others go on with the same
      relative weights; the stream ends when every source is exhausted, so one pass yields
      every row of every source exactly once.
    * ``stop``: the stream ends at the first draw from an exhausted source, so the shares
      hold until the very end (rows left in the other sources are not read).
    * ``cycle``: an exhausted source starts again from its first row (its next epoch, same
      order); the stream never ends: bound it with the trainer's ``max_steps``.

    Rows of one source always come in table order; the seed decides only the interleaving.
    """

    sources: list[BlendSource]
    seed: int = 0
    columns: list[str] | None = None
    exhausted: Exhausted = "drop"

    @field_validator("sources")
    @classmethod
    def _distinct_sources(cls, sources: list[BlendSource]) -> list[BlendSource]:
        if not sources:
            raise ValueError("a blend needs at least one source")
        seen: set[str] = set()
        for source in sources:
            if source.ref in seen:
                raise ValueError(
                    f"source {source.ref!r} is listed twice; give it one entry with the sum "
                    "of its weights"
                )
            seen.add(source.ref)
        return sources

    @field_validator("columns")
    @classmethod
    def _columns_not_empty(cls, columns: list[str] | None) -> list[str] | None:
        if columns is not None and not columns:
            raise ValueError("columns: give at least one column, or leave it out for all")
        if columns is not None and "_source" in columns:
            raise ValueError("columns: '_source' is added by the blend; do not list it")
        return columns


class PinnedSource(FrozenConfig):
    """One source resolved: the table and snapshot id its reference named when pinned."""

    ref: str
    table: str
    snapshot_id: int
    rows: int
    weight: float
    share: float

    @property
    def pinned_ref(self) -> str:
        """``TABLE@SNAPSHOT_ID``: the reference that reads exactly these rows again."""
        return f"{self.table}@{self.snapshot_id}"


class PinnedBlend(FrozenConfig):
    """A blend resolved to exact snapshots: replaying it yields the same rows in the same
    order, byte for byte. Store it with ``model_dump_json()``; load it with
    ``PinnedBlend.model_validate_json(text)``."""

    sources: list[PinnedSource]
    seed: int
    columns: list[str] | None = None
    exhausted: Exhausted = "drop"
    schedule: str = SCHEDULE

    @model_validator(mode="after")
    def _known_schedule(self) -> PinnedBlend:
        if self.schedule != SCHEDULE:
            raise ValueError(
                f"schedule {self.schedule!r} is not this version's {SCHEDULE!r}: the blend "
                "was pinned by another version of posttrain"
            )
        if not self.sources:
            raise ValueError("a pinned blend needs at least one source")
        return self

    def fingerprint(self) -> str:
        """The pinned blend's config hash: a resume state records it (see ``BlendState``)."""
        return self.config_hash()

    def snapshot_ids(self) -> dict[str, int]:
        """Reference as written → snapshot id, e.g. for a manifest or a lineage row."""
        return {source.ref: source.snapshot_id for source in self.sources}


def pin_blend(warehouse: Warehouse, spec: BlendSpec) -> PinnedBlend:
    """Resolve every source of ``spec`` once to its exact snapshot and row count.

    Raises:
        TableNotFoundError, SnapshotNotFoundError: a reference names nothing (the message
            names it).
        ConfigError: a source has no rows, or lacks one of ``spec.columns``.
    """
    total = math.fsum(source.weight for source in spec.sources)
    pinned: list[PinnedSource] = []
    columns = tuple(spec.columns) if spec.columns else None
    for source in spec.sources:
        snapshot = resolve(warehouse, source.ref)
        try:
            arrow_schema(snapshot, columns)
        except ConfigError as exc:
            raise ConfigError(f"blend source {source.ref!r}: {exc}") from None
        rows = _count_rows(snapshot)
        if rows == 0:
            raise ConfigError(
                f"blend source {source.ref!r} ({snapshot.name}@{snapshot.snapshot_id}) has no "
                "rows; remove it from the blend or point it at a snapshot with rows"
            )
        pinned.append(
            PinnedSource(
                ref=source.ref,
                table=snapshot.name,
                snapshot_id=snapshot.snapshot_id,
                rows=rows,
                weight=source.weight,
                share=source.weight / total,
            )
        )
    return PinnedBlend(
        sources=pinned, seed=spec.seed, columns=spec.columns, exhausted=spec.exhausted
    )


def _count_rows(snapshot: PinnedSnapshot) -> int:
    summary = snapshot.snapshot.summary
    props = summary.additional_properties if summary is not None else {}
    deletes = int(props.get("total-delete-files", "0") or 0)
    if snapshot.rows is not None and deletes == 0:
        return snapshot.rows
    # Delete files make total-records an over-count: count what a scan yields.
    first = snapshot.table.schema().column_names[0]
    return sum(batch.num_rows for batch in stream_batches(snapshot, (first,)))
