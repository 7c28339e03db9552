"""Small tables of real text for the dedup tests, and the labelled near-duplicate set."""

from __future__ import annotations

import inspect
import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from posttrain.platform.dedup.evaluation import load_labelled_pairs
from posttrain.platform.messages import make_message
from posttrain.platform.schemas import MESSAGES_TYPE

LABELLED_PAIRS = Path(__file__).resolve().parents[2] / "data" / "near_dup_pairs.jsonl.gz"


def _docstring(obj: object) -> str:
    return textwrap.dedent(inspect.getdoc(obj) or "")


@pytest.fixture(scope="session")
def prose() -> dict[str, str]:
    """Real multi-paragraph documents (standard library docstrings), several hundred words each."""
    import argparse
    import subprocess

    return {
        "json_dumps": _docstring(json.dumps),
        "json_loads": _docstring(json.loads),
        "popen": _docstring(subprocess.Popen),
        "argument_parser": _docstring(argparse.ArgumentParser.add_argument)
        + "\n\n"
        + _docstring(argparse.ArgumentParser),
    }


@pytest.fixture
def table_of() -> Callable[[dict[str, str]], pa.Table]:
    """``{record_id: text}`` → a table with ``record_id`` and ``text``."""

    def build(texts: dict[str, str]) -> pa.Table:
        return pa.table(
            {
                "record_id": pa.array(list(texts), pa.string()),
                "text": pa.array(list(texts.values()), pa.string()),
            }
        )

    return build


@pytest.fixture
def conversations_of() -> Callable[[dict[str, tuple[str, str]]], pa.Table]:
    """``{record_id: (prompt, response)}`` → a candidates table with ``messages``."""

    def build(chats: dict[str, tuple[str, str]]) -> pa.Table:
        messages = [
            [make_message("user", prompt), make_message("assistant", response)]
            for prompt, response in chats.values()
        ]
        return pa.table(
            {
                "record_id": list(chats),
                "messages": pa.array(messages, type=MESSAGES_TYPE),
                "source": ["unit-test"] * len(chats),
                "batch_id": ["batch-1"] * len(chats),
            }
        )

    return build


@pytest.fixture(scope="session")
def labelled_pairs() -> pa.Table:
    """The committed labelled set (``scripts/make_near_dup_set.py``)."""
    return load_labelled_pairs(LABELLED_PAIRS)
