"""The corpora: named sets of tables that are versioned, diffed and released together.

One place declares which tables make up each corpus; ``posttrain version create CORPUS``
tags every table listed here and records the version in ``lineage.corpus_versions``.
"""

from __future__ import annotations

from dataclasses import dataclass

from posttrain.platform.errors import ConfigError
from posttrain.platform.schemas import TableName


@dataclass(frozen=True)
class Corpus:
    """A named set of tables released together, e.g. ``sft``: gold and the silver it came from."""

    name: str
    tables: tuple[TableName, ...]


CORPORA: dict[str, Corpus] = {
    corpus.name: corpus
    for corpus in [
        Corpus(
            "sft",
            (
                TableName.SILVER_CONVERSATIONS,
                TableName.SILVER_REJECTIONS,
                TableName.GOLD_SFT,
                TableName.GOLD_SFT_PACKED,
            ),
        ),
        Corpus(
            "preference",
            (
                TableName.SILVER_PREFERENCES,
                TableName.SILVER_PREFERENCE_REJECTIONS,
                TableName.GOLD_DPO,
            ),
        ),
        Corpus("rl", (TableName.GOLD_RL_PROMPTS, TableName.GOLD_RL_PROMPTS_REJECTIONS)),
        # A labeled cut: the conversations with their outcomes, and the outcomes table at
        # the snapshot the cut read (its tag says which outcomes the version included).
        Corpus("labeled", (TableName.SILVER_LABELED, TableName.BRONZE_OUTCOMES)),
    ]
}


def corpus(name: str) -> Corpus:
    """The corpus called ``name``, or a :class:`ConfigError` listing the known ones."""
    try:
        return CORPORA[name]
    except KeyError:
        raise ConfigError(f"no corpus named {name!r}; known corpora: {sorted(CORPORA)}") from None


def corpora_of(table: str) -> list[str]:
    """The names of the corpora that contain ``table``."""
    return [c.name for c in CORPORA.values() if table in c.tables]
