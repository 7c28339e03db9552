"""What decontamination compares, and how much overlap makes a record contaminated."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Self

from pydantic import Field, model_validator

from posttrain.platform.config import FrozenConfig
from posttrain.platform.messages import TextView

# The longest n-gram the hashing in :mod:`.ngrams` supports. Declared here, not there, so
# the CLI reads the config's defaults without importing numpy and pyarrow.
MAX_NGRAM = 64
# Snapshot summary property holding the decontamination config a silver build used.
DECONTAM_CONFIG_KEY = "posttrain.decontam-config"


class DecontamConfig(FrozenConfig):
    """Settings of n-gram decontamination against the ``eval.*`` benchmarks.

    A record is **contaminated** when its text (the turns chosen by ``text_view``) shares
    at least ``min_matches`` distinct word ``ngram``-grams with one benchmark item, after
    the normalization of :mod:`~posttrain.platform.decontam.ngrams` (NFKC, case-fold,
    punctuation, quotes and whitespace ignored, ``snake_case``/``camelCase`` split).

    The defaults were chosen by measurement (``bench/decontam_quality.py --corpus``) on
    the labelled set ``tests/data/decontam_eval.parquet``: 1,312 HumanEval plants under
    eight light edits and 600 clean records on the same topics. 13-grams with
    ``min_matches=1`` catch 1,255 plants (recall 0.957) with no clean false hit. Every
    plant they miss shares no 13 consecutive normalized tokens with its item (a one-line
    solution alone, or a short prompt whose one docstring sentence was reworded), so no
    threshold can catch it; ``min_matches`` 2 and 3 only lose 9 and 16 more plants. As a
    noise corpus, the 32,576 ``.py`` files of the standard library and site-packages
    (483 MB, whole files as documents) are hit 7 times (4 distinct files), through generic
    runs — ``two 2 three 3 four 4 …``, ``for i in range len l for j in range i 1 len`` —
    and ``min_matches`` 2 or 3 would still leave 7 and 5 of those hits. With
    ``min_ngram_words=0`` there are 14 hits, the other 7 through digit and letter runs such
    as ``0 1 2 … 9 a b c``: hence ``min_ngram_words=1``, which costs no recall. 10-grams
    would catch 27 more plants (0.977) but hit 41 of those files.

    Word n-grams miss a benchmark solution leaked without its prompt (the canonical
    solution under a renamed signature: 0.77 of HumanEval; with its variables renamed too:
    0.02). Code-aware matching (``code_min_tokens``, :mod:`.functions`) fingerprints every
    benchmark function with its identifiers renamed consistently and finds 0.988 and 0.976
    of them, with no match among 2,983 standard-library functions
    (``bench/decontam_quality.py --code``). Its rejections say ``code match``.

    Example:
        >>> DecontamConfig(ngram=8).min_matches
        1
    """

    ngram: int = Field(default=13, ge=5, le=MAX_NGRAM, description="Words per n-gram.")
    min_matches: int = Field(
        default=1, ge=1, description="Distinct n-grams shared with one item that make a hit."
    )
    min_ngram_words: int = Field(
        default=1,
        ge=0,
        description=(
            "Benchmark n-grams with fewer distinct words (tokens of two or more characters "
            "that are not numbers) are not indexed: runs of digits and single letters "
            "occur everywhere."
        ),
    )
    text_view: TextView = Field(default=TextView.ALL, description="Conversation turns checked.")
    code_min_tokens: int | None = Field(
        default=14,
        ge=4,
        description=(
            "Code-aware matching: a benchmark function (from each `def` of an item to its "
            "end, identifiers renamed consistently, docstrings and comments ignored) found "
            "in a record contaminates it; functions of fewer code tokens are not indexed. "
            "None turns code matching off."
        ),
    )
    code_min_words: int = Field(
        default=3,
        ge=0,
        description=(
            "Benchmark functions with fewer informative code tokens (keywords, builtins, "
            "attribute names, numbers, strings) are not indexed."
        ),
    )

    @model_validator(mode="after")
    def _words_fit_in_ngram(self) -> Self:
        if self.min_ngram_words > self.ngram:
            raise ValueError(
                f"min_ngram_words ({self.min_ngram_words}) exceeds ngram ({self.ngram}): "
                "no n-gram could be indexed"
            )
        return self

    def index_scheme(self) -> dict[str, Any]:
        """The settings an :class:`~posttrain.platform.decontam.index.NgramIndex` depends on."""
        return {
            "ngram": self.ngram,
            "min_ngram_words": self.min_ngram_words,
            "code_min_tokens": self.code_min_tokens,
            # Without code matching its other setting makes no index differ.
            "code_min_words": self.code_min_words if self.code_min_tokens is not None else 0,
        }

    def summary_properties(self) -> dict[str, str]:
        """Snapshot summary properties recording this config (see :meth:`recorded`)."""
        return {DECONTAM_CONFIG_KEY: self.canonical_json()}

    @classmethod
    def recorded(cls, summary: Mapping[str, Any]) -> DecontamConfig:
        """The config a snapshot was decontaminated with, read from its summary.

        Silver snapshots written before the config was recorded were built with the
        defaults of the time (word n-grams only), so a summary without it gives the
        defaults without code matching.
        """
        recorded = summary.get(DECONTAM_CONFIG_KEY)
        if not recorded:
            return cls(code_min_tokens=None)
        config = cls.model_validate_json(recorded)
        if "code_min_tokens" not in json.loads(recorded):
            # Recorded before code-aware matching existed: that build did not use it.
            config = config.model_copy(update={"code_min_tokens": None})
        return config
