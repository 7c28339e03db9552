"""The edits behind the labelled near-duplicate set do what its documentation says."""

from __future__ import annotations

import inspect
import random
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from posttrain.platform.dedup.normalize import normal_form, words

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from near_dup_edits import (
    PROSE_BOILERPLATE,
    boilerplate,
    reorder,
    truncate,
    typos,
    unicode_variants,
    whitespace_case,
)

TEXT = inspect.getdoc(subprocess.Popen) or ""


def _normal(text: str) -> str:
    return str(normal_form(pa.array([text])).to_pylist()[0])


def _words(text: str) -> list[str]:
    flat, _ = words(normal_form(pa.array([text])))
    return [str(word) for word in flat.to_pylist()]


@pytest.mark.parametrize("seed", range(5))
def test_whitespace_and_case_edits_keep_the_normal_form(seed: int) -> None:
    edited = whitespace_case(TEXT, random.Random(seed))
    assert edited != TEXT and _normal(edited) == _normal(TEXT)


@pytest.mark.parametrize("seed", range(5))
def test_unicode_variants_keep_the_words(seed: int) -> None:
    edited = unicode_variants(TEXT, random.Random(seed))
    assert edited != TEXT and _words(edited) == _words(TEXT)


def test_typos_misspell_one_to_three_percent_of_the_words() -> None:
    original = TEXT.split()
    edited = typos(TEXT, random.Random(1)).split()
    changed = sum(a != b for a, b in zip(original, edited, strict=True))
    assert 1 <= changed <= 0.03 * len(original) + 1


def test_truncation_keeps_the_start_and_80_to_95_percent() -> None:
    edited = truncate(TEXT, random.Random(2))
    assert TEXT.startswith(edited) and 0.8 <= len(edited) / len(TEXT) <= 0.95


def test_boilerplate_adds_at_most_a_fifth_of_the_words() -> None:
    edited = boilerplate(TEXT, random.Random(3), pool=PROSE_BOILERPLATE)
    added = len(edited.split()) - len(TEXT.split())
    assert TEXT.strip() in edited and 0 < added <= 0.2 * len(TEXT.split())


def test_reordering_moves_text_without_adding_or_losing_any() -> None:
    edited = reorder(TEXT, random.Random(4))
    assert edited != TEXT and sorted(edited.split()) == sorted(TEXT.split())


def test_the_same_seed_gives_the_same_edit() -> None:
    assert typos(TEXT, random.Random(9)) == typos(TEXT, random.Random(9))
