"""The whole chain of a checkpoint: checkpoint → experiment (manifest) → corpus references
→ snapshot ids → bronze records by source, and their licenses (``lineage.sources``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from posttrain.platform.experiments.manifest import (
    Checkpoint,
    Manifest,
    find_manifest,
    get_checkpoint,
)
from posttrain.platform.provenance import Provenance, lineage
from posttrain.platform.warehouse import Warehouse

CHECKPOINT_PREFIX = "checkpoint:"


@dataclass(frozen=True)
class CorpusTrace:
    """One corpus of the blend: the reference as written, what it pinned, where it came from."""

    ref: str
    table: str
    snapshot_id: int
    provenance: Provenance


@dataclass
class CheckpointTrace:
    """A checkpoint and everything it was trained from."""

    checkpoint: Checkpoint
    manifest: Manifest
    corpora: list[CorpusTrace]
    by_source: Counter[str] = field(default_factory=Counter)
    by_license: Counter[str] = field(default_factory=Counter)


def trace_checkpoint(warehouse: Warehouse, checkpoint_id: str) -> CheckpointTrace:
    """The chain of ``checkpoint_id`` (with or without the ``checkpoint:`` prefix).

    Raises:
        ManifestNotFoundError: no such checkpoint, or its experiment is not recorded.
    """
    checkpoint = get_checkpoint(warehouse, checkpoint_id.removeprefix(CHECKPOINT_PREFIX))
    manifest = find_manifest(warehouse, checkpoint.experiment_id)
    found = CheckpointTrace(checkpoint, manifest, [])
    for ref, table, snapshot_id in manifest.pinned_sources():
        provenance = lineage(warehouse, f"{table}@{snapshot_id}")
        found.corpora.append(CorpusTrace(ref, table, snapshot_id, provenance))
        found.by_source.update(provenance.by_source)
        found.by_license.update(provenance.by_license)
    return found
