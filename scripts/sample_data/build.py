"""The sample sources and their clean base records.

Base records pass an audit before they are kept: no accidental exact duplicates, no
accidental near duplicates (5-word-shingle Jaccard ≥ 0.5 to a kept record, in any
source) and no accidental personal data. So every duplicate, near duplicate or secret in
the sample data is a planted one, listed in the manifest.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from datasketch import MinHash, MinHashLSH

from posttrain.platform.messages import TextView
from sample_data import agent_tools, agent_traces, dev_support, math_tutor, stdlib_text
from sample_data.model import (
    Conversation,
    Encoder,
    Row,
    shingles_of,
    text_of,
    to_openai,
    to_prompt_completion,
    to_sharegpt,
)
from sample_data.pii import found_pii

AUDIT_JACCARD = 0.5
_NUM_PERM = 64


@dataclass
class Source:
    """One sample source: where it is written, in which format, under which terms."""

    name: str
    path: str  # relative to the repository root
    format: str
    workspace: str
    license: str
    description: str
    make_encoder: Callable[[], Encoder]  # a fresh record id per call
    rows: list[Row] = field(default_factory=list)
    spares: list[Row] = field(
        default_factory=list
    )  # audited, not written: material for broken rows

    @property
    def is_parquet(self) -> bool:
        return self.path.endswith(".parquet")


class _ViewIndex:
    """Exact and near-duplicate lookup over one text view of the admitted conversations."""

    def __init__(self, view: TextView, threshold: float) -> None:
        self.view = view
        self.threshold = threshold
        self._lsh = MinHashLSH(threshold=max(0.3, threshold - 0.1), num_perm=_NUM_PERM)
        self._shingles: dict[str, set[str]] = {}
        self._exact: set[str] = set()

    def prepare(self, conversation: Conversation) -> tuple[str, set[str], MinHash]:
        text = " ".join(text_of(conversation, self.view).lower().split())
        grams = shingles_of(text)
        minhash = MinHash(num_perm=_NUM_PERM, seed=1)
        minhash.update_batch([gram.encode() for gram in sorted(grams)])
        return text, grams, minhash

    def clashes(self, text: str, grams: set[str], minhash: MinHash) -> bool:
        if text in self._exact:
            return True
        return any(
            len(grams & self._shingles[key]) / len(grams | self._shingles[key]) >= self.threshold
            for key in self._lsh.query(minhash)
        )

    def add(self, key: str, text: str, grams: set[str], minhash: MinHash) -> None:
        self._lsh.insert(key, minhash)
        self._shingles[key] = grams
        self._exact.add(text)


class Auditor:
    """Admits a conversation only if it duplicates nothing admitted before, in any view.

    Whole conversations must stay below Jaccard 0.5; prompts alone and responses alone
    below 0.8 and never equal, so a dedup stage looking at any view finds only plants.
    """

    def __init__(self) -> None:
        self._views = [
            _ViewIndex(TextView.ALL, AUDIT_JACCARD),
            _ViewIndex(TextView.PROMPT, 0.8),
            _ViewIndex(TextView.RESPONSE, 0.8),
        ]
        self.admitted = 0
        self.refused = 0

    def admit(self, conversation: Conversation) -> bool:
        prepared = [index.prepare(conversation) for index in self._views]
        if found_pii(text_of(conversation)) or any(
            index.clashes(*parts) for index, parts in zip(self._views, prepared, strict=True)
        ):
            self.refused += 1
            return False
        key = str(self.admitted)
        for index, parts in zip(self._views, prepared, strict=True):
            index.add(key, *parts)
        self.admitted += 1
        return True


def _counter(prefix: str) -> Iterator[str]:
    return (f"{prefix}-{n:05d}" for n in itertools.count(1))


def parquet_messages(conversation: Conversation) -> list[dict[str, Any]]:
    """Messages with every struct field present, as a Parquet list<struct> column stores them."""
    return [
        {
            "role": m["role"],
            "content": m.get("content"),
            "name": m.get("name"),
            "tool_calls": m.get("tool_calls") or None,
            "tool_call_id": m.get("tool_call_id"),
        }
        for m in conversation
    ]


def _alpaca(conversation: Conversation) -> dict[str, Any]:
    user, answer = conversation[-2]["content"], conversation[-1]["content"]
    # Q&A prompts are a one-paragraph question plus an optional input paragraph.
    instruction, _, extra = user.partition("\n\n")
    return {"instruction": instruction, "input": extra, "output": answer}


def define_sources() -> list[Source]:
    """The five sample sources, in the order they are ingested."""
    math_ids, agent_ids, ticket_ids = _counter("math"), _counter("trace"), _counter("ticket")

    def sharegpt() -> Encoder:
        ident = next(math_ids)
        return lambda c: to_sharegpt(c, system_key=int(ident[-1]) % 2 == 0, id=ident)

    def agent() -> Encoder:
        ident = next(agent_ids)
        tools = json.dumps(
            [
                {"type": "function", "function": {"name": n, **agent_tools.TOOL_SPECS[n]}}
                for n in sorted(agent_tools.TOOL_SPECS)
            ]
        )
        return lambda c: {"id": ident, "messages": parquet_messages(c), "tools": tools}

    def ticket() -> Encoder:
        ident = next(ticket_ids)
        return lambda c: {"id": ident, **to_openai(c)}

    return [
        Source(
            "stdlib-docs-qa",
            "data/samples/stdlib_docs_qa.jsonl",
            "alpaca",
            "public",
            "PSF-2.0",
            "Questions about Python standard-library objects answered from their docstrings.",
            lambda: _alpaca,
        ),
        Source(
            "python-code-tasks",
            "data/samples/python_code_tasks.jsonl",
            "prompt_completion",
            "public",
            "PSF-2.0",
            "Implement a stdlib function from its docstring; the completion is CPython's source.",
            lambda: to_prompt_completion,
        ),
        Source(
            "math-tutor",
            "data/samples/math_tutor.jsonl",
            "sharegpt",
            "public",
            "CC-BY-4.0",
            "Word problems and arithmetic with worked, computed answers; some multi-turn.",
            sharegpt,
        ),
        Source(
            "agent-traces",
            "data/samples/agent_traces.parquet",
            "openai",
            "agents",
            "Apache-2.0",
            "Tool-using assistant traces: tool calls, tool results, parallel calls, error "
            "recovery.",
            agent,
        ),
        Source(
            "dev-support",
            "data/samples/dev_support.jsonl",
            "openai",
            "support",
            "internal-only",
            "Developer-support chats about real Python exceptions; holds the planted PII and "
            "secrets.",
            ticket,
        ),
    ]


BASE_COUNTS = {
    "stdlib-docs-qa": 700,
    "python-code-tasks": 500,
    "math-tutor": 640,
    "agent-traces": 440,
    "dev-support": 300,
}
SPARES = 10
AGENT_DOC_ITEMS = 150


def _candidates(
    name: str,
    rng: random.Random,
    qa: list[stdlib_text.DocItem],
    code: list[stdlib_text.DocItem],
    docs: list[stdlib_text.DocItem],
) -> Iterator[Conversation]:
    if name == "stdlib-docs-qa":
        for item in qa:
            yield stdlib_text.qa_conversation(item, rng)[0]
    elif name == "python-code-tasks":
        for item in code:
            yield stdlib_text.code_conversation(item, rng)
    elif name == "math-tutor":
        while True:
            yield math_tutor.math_conversation(rng)
    elif name == "agent-traces":
        builders = agent_traces.scenarios(docs)
        weights = [w for _, w in builders]
        for index in itertools.count():
            build = rng.choices([b for b, _ in builders], weights)[0]
            yield build(rng, index)["conversation"]
    else:
        while True:
            yield dev_support.support_conversation(rng)


def build_base(sources: list[Source], seed: int) -> dict[str, int]:
    """Fill every source with its audited base rows; returns refusals per source."""
    qa, code = stdlib_text.harvest()
    random.Random(f"{seed}:stdlib").shuffle(qa)
    random.Random(f"{seed}:code").shuffle(code)
    docs, qa = qa[:AGENT_DOC_ITEMS], qa[AGENT_DOC_ITEMS:]
    auditor = Auditor()
    refused: dict[str, int] = {}
    for source in sources:
        rng = random.Random(f"{seed}:{source.name}")
        before = auditor.refused
        wanted = BASE_COUNTS[source.name] + SPARES
        for conversation in _candidates(source.name, rng, qa, code, docs):
            if len(source.rows) == wanted:
                break
            if auditor.admit(conversation):
                source.rows.append(Row(conversation, source.make_encoder()))
        if len(source.rows) < wanted:
            raise RuntimeError(f"{source.name}: only {len(source.rows)} records passed the audit")
        source.rows, source.spares = source.rows[:-SPARES], source.rows[-SPARES:]
        refused[source.name] = auditor.refused - before
    return refused
