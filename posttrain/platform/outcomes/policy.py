"""The snapshot policy for late outcomes: how long a record waits for its outcomes."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import Field

from posttrain.platform.config import FrozenConfig


class LateArrivalPolicy(FrozenConfig):
    """Which records a labeled version cut at time T holds.

    A record is in the cut when it is already labeled (an outcome arrived by T) or when it
    is older than ``T - window_hours`` (its outcomes had their chance to arrive). Outcomes
    that arrive after T appear in the next cut, never by rewriting a published one.

    Example:
        >>> LateArrivalPolicy(window_hours=6).window.total_seconds()
        21600.0
    """

    window_hours: float = Field(
        default=24.0, ge=0, description="Hours a record waits for its outcomes."
    )
    corpus: str = Field(
        default="labeled", min_length=1, description="Corpus a cut is versioned as."
    )

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.window_hours)

    def oldest_unlabeled(self, as_of: datetime) -> datetime:
        """Unlabeled records ingested before this instant are in a cut at ``as_of``."""
        return as_of - self.window
