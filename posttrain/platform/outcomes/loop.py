"""Close the loop: new outcomes → re-join ``silver.labeled`` → a new corpus version.

:func:`cut_version` is what the outcomes sensor's run does, and what a person can run by
hand: one cut of ``silver.labeled`` over pinned inputs under the
:class:`~.policy.LateArrivalPolicy`, then a version of the policy's corpus that tags the
cut and the ``bronze.outcomes`` snapshot it read, recording the outcome cut-off. Versions
are tags: a later cut writes a new snapshot and a new version, and never moves an old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from posttrain.platform.outcomes.labeled import (
    INPUTS,
    LABELED,
    OUTCOMES,
    LabeledCut,
    cut_labeled,
    labeled_checks,
)
from posttrain.platform.outcomes.policy import LateArrivalPolicy
from posttrain.platform.versions import CorpusVersion, create_version, versions
from posttrain.platform.warehouse import Snapshots, Warehouse


@dataclass(frozen=True)
class LoopResult:
    """The cut, and the version made from it (``None`` when the checks failed or the cut
    equals the latest version's)."""

    cut: LabeledCut
    version: CorpusVersion | None
    why_not: str = ""


def next_version_name(warehouse: Warehouse, corpus: str) -> str:
    """``v<N+1>`` where N is the number of versions the corpus has (``v1`` for the first)."""
    return f"v{len([v for v in versions(warehouse, corpus) if v.event == 'create']) + 1}"


def _latest(warehouse: Warehouse, corpus: str) -> CorpusVersion | None:
    cut = [v for v in versions(warehouse, corpus) if v.event == "create"]
    return cut[-1] if cut else None


def cut_version(
    warehouse: Warehouse,
    policy: LateArrivalPolicy,
    *,
    at: Snapshots | None = None,
    as_of: datetime | None = None,
    name: str | None = None,
    created_by: str | None = None,
) -> LoopResult:
    """Re-join ``silver.labeled`` over ``at`` (default: current inputs) and version it.

    No version is cut when a check of the cut fails, or when the cut's snapshots equal
    those of the corpus's latest version (nothing new to release).
    """
    pinned = dict(at) if at is not None else warehouse.pin(*INPUTS)
    cut = cut_labeled(warehouse, policy, as_of=as_of, at=pinned)
    failed = [
        key
        for key, outcome in labeled_checks(warehouse, cut.snapshot_id).items()
        if not outcome.passed
    ]
    if failed:
        return LoopResult(cut, None, f"checks failed on silver.labeled: {', '.join(failed)}")
    snapshots = {str(LABELED): cut.snapshot_id, str(OUTCOMES): pinned.get(OUTCOMES)}
    latest = _latest(warehouse, policy.corpus)
    if latest is not None and dict(latest.snapshots) == snapshots:
        return LoopResult(cut, None, f"nothing new since {policy.corpus}@{latest.version}")
    version = create_version(
        warehouse,
        policy.corpus,
        name or next_version_name(warehouse, policy.corpus),
        outcome_cutoff=cut.outcome_cutoff,
        outcomes_included=(
            f"{OUTCOMES}@{pinned.get(OUTCOMES)}: {cut.outcomes_included} outcomes "
            f"up to {cut.outcome_cutoff.isoformat() if cut.outcome_cutoff else 'none'}"
        ),
        created_by=created_by,
        pinned=snapshots,
    )
    return LoopResult(cut, version)
