"""Preference (DPO) corpora: candidate pairs from each preference format, their checks,
``silver.preferences`` and ``gold.dpo``."""

from posttrain.platform.preference.build import (
    PreferenceConfig,
    PreferenceReport,
    build_dpo,
    build_preferences,
)
from posttrain.platform.preference.pairs import PairingConfig, PairingRule, candidate_pairs

__all__ = [
    "PairingConfig",
    "PairingRule",
    "PreferenceConfig",
    "PreferenceReport",
    "build_dpo",
    "build_preferences",
    "candidate_pairs",
]
