"""Length outliers: whole stdlib modules as one turn, and exchanges of a few characters."""

from __future__ import annotations

import importlib
import inspect
import random

from sample_data.build import Source
from sample_data.model import Conversation, Row, msg
from sample_data.pii import found_pii
from sample_data.planting import insert_row


def long_module_source(name: str) -> str:
    """A whole stdlib module's source, without the lines that name its authors' e-mails."""
    lines = inspect.getsource(importlib.import_module(name)).splitlines(keepends=True)
    source = "".join(line for line in lines if not found_pii(line))
    assert not found_pii(source), f"{name} holds personal data across lines"
    return source


def plant_length_outliers(sources: dict[str, Source], rng: random.Random) -> None:
    """Three conversations with a 100k+ character message and three of a few characters."""
    qa, code, math, agents, support = (
        sources[n]
        for n in (
            "stdlib-docs-qa",
            "python-code-tasks",
            "math-tutor",
            "agent-traces",
            "dev-support",
        )
    )
    longs: list[tuple[Source, Conversation]] = [
        (
            qa,
            [
                msg("user", "Show me the complete source code of Python's `inspect` module."),
                msg("assistant", f"```python\n{long_module_source('inspect')}```"),
            ],
        ),
        (
            code,
            [
                msg("user", "Write the complete `tarfile` module of the Python standard library."),
                msg("assistant", f"```python\n{long_module_source('tarfile')}```"),
            ],
        ),
    ]
    trace = [
        msg("system", "You are an assistant for a small engineering team."),
        msg("user", "Read typing.py and tell me what it defines."),
    ]
    trace += [
        msg(
            "assistant",
            None,
            tool_calls=[
                {
                    "id": "call_readtyping01",
                    "type": "function",
                    "function": {"name": "read_file", "arguments": '{"path": "typing.py"}'},
                }
            ],
        ),
        msg("tool", long_module_source("typing"), tool_call_id="call_readtyping01"),
        msg(
            "assistant",
            "`typing.py` defines the runtime support for type hints: `Any`, `Union`, `Optional`, "
            "`Generic`, `Protocol`, `TypedDict`, `NamedTuple`, `cast`, `overload` and the helpers "
            "`get_type_hints`, `get_origin` and `get_args`.",
        ),
    ]
    longs.append((agents, trace))
    shorts: list[tuple[Source, Conversation]] = [
        (qa, [msg("user", "hi"), msg("assistant", "Hello!")]),
        (math, [msg("user", "2+2"), msg("assistant", "4")]),
        (support, [msg("user", "thx"), msg("assistant", "np")]),
    ]
    for kind, items in (("too_long", longs), ("too_short", shorts)):
        for source, conversation in items:
            chars = sum(len(m.get("content") or "") for m in conversation)
            row = Row(
                conversation,
                source.make_encoder(),
                plant={"kind": kind, "expected_reason": kind, "chars": chars},
            )
            insert_row(source, row, rng)
