"""Who answers an eval: an OpenAI-compatible HTTP endpoint or a local ``transformers`` model.

A runner turns chat prompts into :class:`Completion` s, one per prompt, in order, and never
raises for one item: a refused connection, a timeout, a malformed response or an output
cut at ``max_tokens`` is that item's ``error``. Outputs are cached (see
:mod:`~posttrain.platform.evals.cache`), so a re-run asks only what it has not asked yet.

Model specs (:func:`runner_for`):

- ``openai:BASE_URL#MODEL`` — POST ``BASE_URL/chat/completions`` with ``"model": MODEL``,
  e.g. ``openai:http://127.0.0.1:8000/v1#qwen2.5-0.5b-instruct``; the bearer token, if the
  endpoint wants one, comes from ``$OPENAI_API_KEY`` (never from the spec);
- a checkpoint folder (``config.json`` + weights + tokenizer), optionally written
  ``local:PATH``: run greedily on CPU with ``transformers``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import ConfigError, MissingDependencyError
from posttrain.platform.evals.cache import CACHE_FILE, EvalCache, cache_key
from posttrain.platform.settings import posttrain_home

if TYPE_CHECKING:
    import httpx
    from tenacity import RetryCallState

Message = dict[str, str]
OPENAI_PREFIX = "openai:"
LOCAL_PREFIX = "local:"
API_KEY_ENV = "OPENAI_API_KEY"


class GenerationSettings(FrozenConfig):
    """How outputs are generated and requested. Only the first two change an output, so
    only they are part of the cache key."""

    max_tokens: int = Field(default=512, ge=1, le=65_536, description="Output token limit.")
    temperature: float = Field(default=0.0, ge=0, le=2, description="0 is greedy.")
    timeout_s: float = Field(default=60.0, gt=0, description="Wall time per request.")
    concurrency: int = Field(default=4, ge=1, le=256, description="Requests in flight.")
    retries: int = Field(default=4, ge=0, le=20, description="Retries on 429/5xx/connection.")
    backoff_s: float = Field(default=0.5, ge=0, description="First retry wait, then doubled.")
    max_backoff_s: float = Field(default=30.0, ge=0, description="Longest wait between tries.")
    max_response_bytes: int = Field(
        default=4_000_000, ge=1024, description="A longer response body is cut and an error."
    )

    def cache_fields(self) -> dict[str, Any]:
        return {"max_tokens": self.max_tokens, "temperature": self.temperature}


@dataclass(frozen=True)
class Completion:
    """One prompt's answer: the output, or why there is no complete one."""

    output: str | None
    error: str | None = None
    latency_s: float = 0.0
    cached: bool = False


class Runner(Protocol):
    """Anything that answers chat prompts for an eval run."""

    @property
    def model(self) -> str:
        """Identity recorded in ``eval.results.model``: the spec, never a secret."""
        ...

    @property
    def settings(self) -> GenerationSettings: ...

    def generate(self, prompts: Sequence[list[Message]]) -> list[Completion]:
        """One completion per prompt, in order; per-item failures are completions with an
        ``error``, never exceptions."""
        ...


def default_cache() -> EvalCache:
    """The cache file under ``$POSTTRAIN_HOME``."""
    return EvalCache(posttrain_home() / CACHE_FILE)


def runner_for(
    spec: str,
    *,
    settings: GenerationSettings | None = None,
    cache: EvalCache | None = None,
    use_cache: bool = True,
) -> Runner:
    """The runner a model spec names (see the module docstring for the syntax).

    Args:
        spec: ``openai:BASE_URL#MODEL``, ``local:PATH`` or a checkpoint folder.
        settings: generation and request settings (default :class:`GenerationSettings`).
        cache: where outputs are cached (default: ``$POSTTRAIN_HOME/eval-cache.sqlite``).
        use_cache: ``False`` asks the model every time and stores nothing.

    Raises:
        ConfigError: the spec is neither form, or names no checkpoint folder.
    """
    settings = settings or GenerationSettings()
    chosen = (cache or default_cache()) if use_cache else None
    if spec.startswith(OPENAI_PREFIX):
        base_url, sep, model = spec.removeprefix(OPENAI_PREFIX).partition("#")
        if not sep or not model or not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"model spec {spec!r}: expected openai:BASE_URL#MODEL, e.g. "
                "openai:http://127.0.0.1:8000/v1#my-model"
            )
        return OpenAIRunner(base_url.rstrip("/"), model, settings, cache=chosen)
    path = Path(spec.removeprefix(LOCAL_PREFIX)).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"model spec {spec!r}: not openai:BASE_URL#MODEL and not a checkpoint folder "
            f"(no {path / 'config.json'})"
        )
    return TransformersRunner(path, settings, cache=chosen)


class _Transient(Exception):
    """Worth another try: 429, 5xx, a dropped or refused connection."""

    def __init__(
        self, message: str, retry_after: float | None = None, *, connect: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.connect = connect


class _Failed(Exception):
    """This item failed for good (timeout, 4xx, malformed or oversized response)."""


class _Unreachable(_Failed):
    """Every attempt of this item failed to connect."""


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class OpenAIRunner:
    """Chat completions from an OpenAI-compatible endpoint, with retries and a cache."""

    def __init__(
        self,
        base_url: str,
        model_name: str,
        settings: GenerationSettings | None = None,
        *,
        cache: EvalCache | None = None,
    ) -> None:
        self.base_url = base_url
        self.model_name = model_name
        self._settings = settings or GenerationSettings()
        self.cache = cache
        self.requests = 0  # HTTP requests sent, retries included
        # Set once an item gave up on connecting to an endpoint that never answered: the
        # other items then fail at once instead of each waiting out its retries.
        self._unreachable: str | None = None
        self._answered = False

    @property
    def model(self) -> str:
        return f"{OPENAI_PREFIX}{self.base_url}#{self.model_name}"

    @property
    def settings(self) -> GenerationSettings:
        return self._settings

    def generate(self, prompts: Sequence[list[Message]]) -> list[Completion]:
        import httpx

        headers = {"content-type": "application/json"}
        key = os.environ.get(API_KEY_ENV)
        if key:
            headers["authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=self._settings.concurrency)
        with (
            httpx.Client(headers=headers, limits=limits) as client,
            ThreadPoolExecutor(self._settings.concurrency, "posttrain-eval") as pool,
        ):
            return list(pool.map(lambda messages: self._one(client, messages), prompts))

    def _one(self, client: httpx.Client, messages: list[Message]) -> Completion:
        key = cache_key(self.model, messages, self._settings.cache_fields())
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return Completion(hit, cached=True)
        if self._unreachable is not None:
            return Completion(None, f"endpoint unreachable: {self._unreachable}")
        started = time.monotonic()
        try:
            output = self._ask(client, messages)
        except _Unreachable as exc:
            if not self._answered:
                self._unreachable = str(exc)
            return Completion(None, str(exc), time.monotonic() - started)
        except _Failed as exc:
            return Completion(None, str(exc), time.monotonic() - started)
        except Exception as exc:  # a bug in one item's handling must not lose the run
            return Completion(None, f"{type(exc).__name__}: {exc}", time.monotonic() - started)
        completion = Completion(*output, latency_s=time.monotonic() - started)
        if self.cache is not None and completion.error is None and completion.output is not None:
            self.cache.put(key, self.model, completion.output)
        return completion

    def _ask(self, client: httpx.Client, messages: list[Message]) -> tuple[str | None, str | None]:
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

        s = self._settings
        body = {
            "model": self.model_name,
            "messages": messages,
            "max_tokens": s.max_tokens,
            "temperature": s.temperature,
        }
        retrying = Retrying(
            stop=stop_after_attempt(s.retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            reraise=True,
        )
        try:
            payload = retrying(self._post, client, body)
        except _Transient as exc:
            kind = _Unreachable if exc.connect else _Failed
            raise kind(f"gave up after {s.retries + 1} attempts: {exc}") from None
        return self._parse(payload)

    def _wait(self, state: RetryCallState) -> float:
        """Exponential backoff with jitter, or the server's Retry-After if longer."""
        s = self._settings
        backoff = s.backoff_s * 2.0 ** (state.attempt_number - 1) * random.uniform(0.5, 1.0)
        exc = state.outcome.exception() if state.outcome is not None else None
        asked = exc.retry_after if isinstance(exc, _Transient) and exc.retry_after else 0.0
        return min(max(backoff, asked), s.max_backoff_s)

    def _post(self, client: httpx.Client, body: dict[str, Any]) -> bytes:
        import httpx

        s = self._settings
        self.requests += 1
        deadline = time.monotonic() + s.timeout_s
        url = f"{self.base_url}/chat/completions"
        try:
            with client.stream("POST", url, json=body, timeout=s.timeout_s) as response:
                self._answered = True
                if response.status_code == 429 or response.status_code >= 500:
                    raise _Transient(f"HTTP {response.status_code}", _retry_after(response))
                received = bytearray()
                # Read by chunks against a wall-time deadline and a size cap: a server that
                # trickles or never ends its body would otherwise hold the item forever.
                for chunk in response.iter_bytes():
                    received += chunk
                    if len(received) > s.max_response_bytes:
                        raise _Failed(
                            f"response larger than {s.max_response_bytes:,} bytes "
                            "(endless output?): cut"
                        )
                    if time.monotonic() > deadline:
                        raise _Failed(f"timed out after {s.timeout_s:g} s (response unfinished)")
                if response.status_code >= 400:
                    text = received[:300].decode("utf-8", "replace")
                    raise _Failed(f"HTTP {response.status_code}: {text}")
                return bytes(received)
        except httpx.TimeoutException:
            raise _Failed(f"timed out after {s.timeout_s:g} s") from None
        except httpx.ConnectError as exc:  # refused, no route, unknown host
            raise _Transient(f"{type(exc).__name__}: {exc}", connect=True) from None
        except httpx.TransportError as exc:
            raise _Transient(f"{type(exc).__name__}: {exc}") from None

    def _parse(self, payload: bytes) -> tuple[str | None, str | None]:
        """(output, error) from a chat completion response body."""
        try:
            document = json.loads(payload)
            choice = document["choices"][0]
            content = choice["message"]["content"]
            finish = choice.get("finish_reason")
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            preview = payload[:200].decode("utf-8", "replace")
            raise _Failed(
                f"malformed response (no choices[0].message.content: {exc!r}): {preview!r}"
            ) from None
        if not isinstance(content, str):
            raise _Failed(f"malformed response: message.content is {type(content).__name__}")
        if finish == "length":
            return content, f"output cut at max_tokens={self._settings.max_tokens}"
        used = (document.get("usage") or {}).get("completion_tokens")
        if isinstance(used, int) and used > self._settings.max_tokens:
            return content, (
                f"endpoint ignored max_tokens={self._settings.max_tokens} ({used} tokens)"
            )
        return content, None


def _fingerprint(path: Path) -> str:
    """Names, sizes and modification times of a checkpoint's files: a rewritten checkpoint
    at the same path is a different model to the cache."""
    entries = sorted(
        (p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in path.rglob("*")
        if p.is_file()
    )
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]


class TransformersRunner:
    """Greedy generation with a local ``transformers`` checkpoint (CPU)."""

    def __init__(
        self,
        path: str | Path,
        settings: GenerationSettings | None = None,
        *,
        cache: EvalCache | None = None,
    ) -> None:
        self.path = Path(path).expanduser().resolve()
        self._settings = settings or GenerationSettings()
        self.cache = cache
        self._loaded: tuple[Any, Any] | None = None

    @property
    def model(self) -> str:
        return str(self.path)

    @property
    def settings(self) -> GenerationSettings:
        return self._settings

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            try:
                import torch  # noqa: F401
                from transformers import AutoModelForCausalLM, AutoTokenizer
            except ImportError as exc:
                raise MissingDependencyError("a local checkpoint eval", "torch") from exc
            tokenizer = AutoTokenizer.from_pretrained(self.path)
            model = AutoModelForCausalLM.from_pretrained(self.path)
            model.eval()  # type: ignore[no-untyped-call]
            self._loaded = (tokenizer, model)
        return self._loaded

    def generate(self, prompts: Sequence[list[Message]]) -> list[Completion]:
        identity = f"{self.path}@{_fingerprint(self.path)}"
        fields = self._settings.cache_fields()
        results = []
        for messages in prompts:
            key = cache_key(identity, messages, fields)
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                results.append(Completion(hit, cached=True))
                continue
            started = time.monotonic()
            try:
                output, error = self._one(messages)
            except Exception as exc:  # one item's failure is that item's error
                output, error = None, f"{type(exc).__name__}: {exc}"
            completion = Completion(output, error, time.monotonic() - started)
            if self.cache is not None and error is None and output is not None:
                self.cache.put(key, identity, output)
            results.append(completion)
        return results

    def _one(self, messages: list[Message]) -> tuple[str, str | None]:
        import torch

        tokenizer, model = self._load()
        s = self._settings
        if tokenizer.chat_template:
            text = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n\n"
        inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        eos = tokenizer.eos_token_id
        started = time.monotonic()
        with torch.no_grad():
            out = model.generate(
                **inputs,
                max_new_tokens=s.max_tokens,
                do_sample=s.temperature > 0,
                temperature=s.temperature if s.temperature > 0 else None,
                max_time=s.timeout_s,
                pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
            )
        new = out[0, inputs["input_ids"].shape[1] :].tolist()
        output = tokenizer.decode(new, skip_special_tokens=True)
        ended = eos is not None and eos in new
        if not ended and time.monotonic() - started >= s.timeout_s:
            return output, f"timed out after {s.timeout_s:g} s"
        if not ended and len(new) >= s.max_tokens:
            return output, f"output cut at max_tokens={s.max_tokens}"
        return output, None
