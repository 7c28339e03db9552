"""Base class for configuration models, and the config hash recorded in every snapshot."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict


class FrozenConfig(BaseModel):
    """An immutable, strictly validated configuration model.

    Unknown keys are refused (a typo in a YAML file fails loudly instead of being ignored),
    and :meth:`config_hash` gives a stable identity for snapshot summaries.

    Example:
        >>> class Dedup(FrozenConfig):
        ...     threshold: float = 0.8
        >>> Dedup().config_hash() == Dedup(threshold=0.8).config_hash()
        True
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    def canonical_json(self) -> str:
        """The model as JSON with sorted keys: equal configs give equal strings."""
        import json

        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def config_hash(self) -> str:
        """First 16 hex digits of the SHA-256 of :meth:`canonical_json`."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]
