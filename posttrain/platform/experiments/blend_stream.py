"""The experiment's side of the blend loader (:mod:`posttrain.platform.blend`): pin the
experiment's corpora into a :class:`~posttrain.platform.blend.PinnedBlend`, store it as
JSON in the manifest, and replay it as a stream of examples whose SHA-256 proves that two
runs read the same bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from posttrain.platform.warehouse import Warehouse

if TYPE_CHECKING:
    from posttrain.platform.blend import PinnedBlend
    from posttrain.platform.experiments.config import ExperimentConfig

# The blend tags each row with the reference it came from; the trainer does not read it.
SOURCE_COLUMN = "_source"


def pin(warehouse: Warehouse, config: ExperimentConfig, refs: Sequence[str]) -> PinnedBlend:
    """Pin the experiment's blend: ``refs`` (one per source, already ``TABLE@SNAPSHOT_ID``)
    with the file's weights, seed and columns."""
    from posttrain.platform.blend import BlendSource, BlendSpec, pin_blend

    spec = BlendSpec(
        sources=[
            BlendSource(ref=ref, weight=source.weight)
            for ref, source in zip(refs, config.data.sources, strict=True)
        ],
        seed=config.seed,
        columns=list(config.columns),
        exhausted=config.data.exhausted,
    )
    return pin_blend(warehouse, spec)


def pinned_to_json(pinned: PinnedBlend) -> str:
    """The pinned blend as canonical JSON (sorted keys): what the manifest stores."""
    return pinned.canonical_json()


def pinned_from_json(text: str) -> PinnedBlend:
    """Inverse of :func:`pinned_to_json`."""
    from posttrain.platform.blend import PinnedBlend

    return PinnedBlend.model_validate_json(text)


def example_bytes(row: dict[str, Any]) -> bytes:
    """One example as canonical JSON bytes: what the stream digest hashes."""
    return json.dumps(row, sort_keys=True, separators=(",", ":"), default=str).encode()


@dataclass
class StreamDigest:
    """A running SHA-256 over the examples handed to the trainer, in order."""

    examples: int = 0
    _hash: Any = field(default_factory=hashlib.sha256)

    def update(self, row: dict[str, Any]) -> None:
        self._hash.update(example_bytes(row))
        self._hash.update(b"\n")
        self.examples += 1

    def hexdigest(self) -> str:
        return str(self._hash.hexdigest())


def iter_examples(
    warehouse: Warehouse,
    blend_json: str,
    *,
    limit: int | None = None,
    digest: StreamDigest | None = None,
) -> Iterator[dict[str, Any]]:
    """The examples of a pinned blend, in blend order, at most ``limit``; each one is added
    to ``digest`` as it is handed out (with the source it came from)."""
    from posttrain.platform.blend import iter_blend

    if limit is not None and limit <= 0:
        return
    rows = iter_blend(warehouse, pinned_from_json(blend_json))
    for row in rows if limit is None else itertools.islice(rows, limit):
        if digest is not None:
            digest.update(row)
        yield {key: value for key, value in row.items() if key != SOURCE_COLUMN}
