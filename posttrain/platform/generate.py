"""Answers from a checkpoint for a prompt: a local ``transformers`` model or an
OpenAI-compatible endpoint, and the vibe-check table that keeps them.

A *checkpoint id* says where an answer came from, so a vibe check can later become an
eval: ``transformers:<path>`` for a local model folder, ``openai:<base url>#<model>`` for
an endpoint. :func:`record_vibe_checks` appends the prompts and answers to
``lineage.vibe_checks`` with that id.

Example:
    >>> generator = generator_for("transformers:/models/tiny")  # doctest: +SKIP
    >>> generator.generate([{"role": "user", "content": "2+2?"}], max_new_tokens=16)
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from posttrain.platform.errors import ConfigError, PosttrainError
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import Warehouse

MAX_NEW_TOKENS = 256


class GenerationError(PosttrainError):
    """The checkpoint or endpoint could not produce an answer."""


class Generator(Protocol):
    """Something that answers a list of chat messages."""

    backend: str

    @property
    def checkpoint(self) -> str:
        """Where answers come from, e.g. ``transformers:/models/x``."""
        ...

    def generate(self, messages: Sequence[Mapping[str, Any]], max_new_tokens: int) -> str: ...


def _plain(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    return [
        {"role": str(m.get("role") or "user"), "content": str(m.get("content") or "")}
        for m in messages
    ]


@dataclass
class TransformersGenerator:
    """A local ``transformers`` causal LM (a folder with weights and a tokenizer), greedy."""

    path: Path
    backend: str = "transformers"

    @property
    def checkpoint(self) -> str:
        return f"transformers:{self.path}"

    def generate(self, messages: Sequence[Mapping[str, Any]], max_new_tokens: int) -> str:
        model, tokenizer, lock = _load_local(str(self.path))
        import torch

        chat = _plain(messages)
        if getattr(tokenizer, "chat_template", None):
            ids = tokenizer.apply_chat_template(
                chat, add_generation_prompt=True, return_tensors="pt", return_dict=True
            )["input_ids"]
        else:
            text = "\n".join(f"{m['role']}: {m['content']}" for m in chat) + "\nassistant:"
            ids = tokenizer(text, return_tensors="pt")["input_ids"]
        with lock, torch.no_grad():
            output = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max(1, min(max_new_tokens, 2048)),
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id or 0,
            )
        return str(tokenizer.decode(output[0][ids.shape[1] :], skip_special_tokens=True))


@functools.lru_cache(maxsize=2)
def _load_local(path: str) -> tuple[Any, Any, threading.Lock]:
    """The model and tokenizer of ``path``, loaded once (two kept: compare two checkpoints)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(path)
    if not folder.is_dir():
        raise GenerationError(f"checkpoint {path}: no such folder")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise GenerationError(f"checkpoint {path}: cannot load it: {exc}") from None
    model.train(False)  # inference mode: no dropout
    return model, tokenizer, threading.Lock()


@dataclass
class OpenAIGenerator:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, TGI, llama.cpp, ...).

    The API key, if any, comes from the environment variable ``api_key_env``, never from a
    page or a table.
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 60.0
    backend: str = "openai"

    @property
    def checkpoint(self) -> str:
        return f"openai:{self.base_url}#{self.model}"

    def generate(self, messages: Sequence[Mapping[str, Any]], max_new_tokens: int) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "messages": _plain(messages),
                "max_tokens": max_new_tokens,
                "temperature": 0,
            }
        ).encode()
        url = self.base_url.rstrip("/") + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
            raise GenerationError(f"endpoint {url}: {exc}") from None
        try:
            return str(answer["choices"][0]["message"]["content"] or "")
        except (KeyError, IndexError, TypeError):
            raise GenerationError(
                f"endpoint {url}: expected choices[0].message.content, got {str(answer)[:200]}"
            ) from None


def generator_for(checkpoint: str) -> Generator:
    """The generator a checkpoint id names (``transformers:PATH`` or
    ``openai:BASE_URL#MODEL``; a bare path is a local folder).

    Raises:
        ConfigError: the id is neither.
    """
    kind, sep, rest = checkpoint.partition(":")
    if sep and kind == "openai":
        base, hash_sign, model = rest.partition("#")
        if not base.startswith(("http://", "https://")) or not hash_sign or not model:
            raise ConfigError(f"checkpoint {checkpoint!r}: expected openai:http(s)://HOST/v1#MODEL")
        return OpenAIGenerator(base, model)
    path = rest if sep and kind == "transformers" else checkpoint
    if not path:
        raise ConfigError("checkpoint: expected transformers:PATH or openai:URL#MODEL")
    return TransformersGenerator(Path(path).expanduser())


@dataclass(frozen=True)
class VibeCheck:
    """One prompt and one checkpoint's answer, about to be saved."""

    session: str
    prompt: list[dict[str, Any]]
    answer: str
    checkpoint: str
    backend: str
    seconds: float
    created_by: str
    source_table: str | None = None
    source_key: str | None = None
    stored_answer: str | None = None


def record_vibe_checks(warehouse: Warehouse, checks: Sequence[VibeCheck]) -> list[str]:
    """Append ``checks`` to ``lineage.vibe_checks``; their ids."""
    now = datetime.now(UTC)
    rows = []
    for check in checks:
        digest = hashlib.sha256(
            json.dumps(
                [check.session, check.prompt, check.checkpoint, now.isoformat(), check.answer],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()[:24]
        rows.append(
            {
                "vibe_id": digest,
                "session": check.session,
                "prompt": [
                    {
                        "role": m.get("role"),
                        "content": m.get("content"),
                        "name": None,
                        "tool_calls": None,
                        "tool_call_id": None,
                    }
                    for m in check.prompt
                ],
                "answer": check.answer,
                "checkpoint": check.checkpoint,
                "backend": check.backend,
                "source_table": check.source_table,
                "source_key": check.source_key,
                "stored_answer": check.stored_answer,
                "created_by": check.created_by,
                "created_at": now,
                "seconds": check.seconds,
            }
        )
    spec = TABLES[TableName.LINEAGE_VIBE_CHECKS]
    warehouse.ensure_table(spec)
    warehouse.append(
        TableName.LINEAGE_VIBE_CHECKS,
        pa.Table.from_pylist(rows, schema=spec.schema),
        Lineage(
            "viewer",
            properties={
                "posttrain.vibe.checkpoints": ",".join(
                    sorted({check.checkpoint for check in checks})
                )
            },
        ),
    )
    return [str(row["vibe_id"]) for row in rows]


def run_generation(
    generator: Generator,
    messages: Sequence[Mapping[str, Any]],
    max_new_tokens: int = MAX_NEW_TOKENS,
) -> tuple[str, float]:
    """The generator's answer to ``messages`` and the seconds it took."""
    started = time.monotonic()
    answer = generator.generate(messages, max_new_tokens)
    return answer, time.monotonic() - started


def prompt_of(row: Mapping[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The prompt a row asks (messages up to its last assistant turn) and the answer it
    stores: ``prompt`` column (DPO, RL) or ``messages`` split before the last assistant."""
    if isinstance(row.get("prompt"), list):
        chosen = row.get("chosen")
        stored = None
        if isinstance(chosen, list) and chosen:
            stored = str(chosen[-1].get("content") or "")
        elif row.get("reference") is not None:
            stored = str(row["reference"])
        return list(row["prompt"]), stored
    messages = row.get("messages")
    if isinstance(messages, list) and messages:
        last = max(
            (i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=None
        )
        if last is None:
            return list(messages), None
        return list(messages[:last]), str(messages[last].get("content") or "")
    raise GenerationError("this row has no prompt or messages column to generate from")
