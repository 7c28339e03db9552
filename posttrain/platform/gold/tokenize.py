"""Chat-template tokenization with an assistant-only loss mask, over Arrow record batches.

:class:`ChatTokenizer` produces, for each conversation, exactly what
``tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
return_assistant_tokens_mask=True)`` produces, but in batches: render every template
(:mod:`~posttrain.platform.gold.chat_render`), encode all texts with one Rust
``encode_batch`` call, and map each ``{% generation %}`` character span to its token range
(:mod:`~posttrain.platform.gold.encoded`).

:class:`TokenizeStep` wraps it as a picklable step for an
:class:`~posttrain.platform.execution.Executor`, so tokenization runs in-process or on Ray
with identical output; each process loads the tokenizer once.

Example:
    >>> import pyarrow as pa
    >>> from posttrain.platform.messages import make_message
    >>> from posttrain.platform.schemas import MESSAGES_TYPE
    >>> batch = pa.table({
    ...     "record_id": ["r1"],
    ...     "messages": pa.array([[make_message("user", "hi"), make_message("assistant", "hello")]],
    ...                          type=MESSAGES_TYPE),
    ... })
    >>> result = TokenizeStep(TokenizeConfig())(batch)
    >>> result.kept["num_trainable_tokens"].to_pylist()  # "hello" + <|im_end|>
    [2]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
from pydantic import Field

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import ConfigError, RecordError
from posttrain.platform.execution import Executor, ThreadExecutor
from posttrain.platform.gold.chat_render import (
    SHIPPED_TOKENIZERS_DIR,
    Rendered,
    RenderError,
    make_renderer,
)
from posttrain.platform.gold.control_tokens import find_control_tokens
from posttrain.platform.gold.encoded import EncodedBatch, Truncation
from posttrain.platform.schemas import RejectionReason
from posttrain.platform.steps import StepResult, rejections_of, run_stages

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerBase

SHIPPED_TOKENIZER = "posttrain-chat-8k"
TOKENIZE_BATCH_ROWS = 1024
# Batches in flight without an executor: while one batch is in ``encode_batch`` (Rust, on
# every core, GIL released), the next is rendered and the last one's masks and Arrow
# columns are built, instead of the cores waiting for that Python work.
PIPELINED_BATCHES = 2

TOKENIZED = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("input_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("assistant_masks", pa.list_(pa.int8()), nullable=False),
        pa.field("num_tokens", pa.int32(), nullable=False),
        pa.field("num_trainable_tokens", pa.int32(), nullable=False),
        pa.field("truncated", pa.bool_(), nullable=False),
    ]
)
"""What tokenization yields per conversation (an intermediate, not a warehouse table)."""

_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


class TokenizeConfig(FrozenConfig):
    """How conversations become token ids.

    Attributes:
        tokenizer: a tokenizer shipped with posttrain (``posttrain-chat-8k``), a local
            directory, or a Hugging Face hub name (from the local cache when offline).
        max_length: longest tokenized conversation kept whole; ``None`` for no limit.
        truncation: which end of a longer conversation to keep.
        mask_policy: which tokens are trained on (``assistant_only``: the assistant turns).
    """

    tokenizer: str = SHIPPED_TOKENIZER
    max_length: int | None = Field(default=None, gt=0)
    truncation: Truncation = Truncation.KEEP_START
    # Which tokens the loss mask trains on: the assistant turns' {% generation %} spans.
    mask_policy: Literal["assistant_only"] = "assistant_only"


def resolve_tokenizer(name: str) -> str:
    """The path or hub name ``AutoTokenizer.from_pretrained`` should load for ``name``."""
    shipped = SHIPPED_TOKENIZERS_DIR / name
    if "/" not in name and shipped.is_dir():
        return str(shipped)
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


@lru_cache(maxsize=8)
def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """``AutoTokenizer.from_pretrained`` for ``name``, once per process.

    Raises:
        ConfigError: the tokenizer cannot be found or loaded.
    """
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve_tokenizer(name))
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"tokenizer {name!r}: cannot load it as a shipped name ({SHIPPED_TOKENIZER}), "
            f"a local directory or a cached hub name: {error}"
        ) from error


class ChatTokenizer:
    """Tokenizes conversations with a chat template and an assistant-only loss mask.

    Args:
        config: which tokenizer, and how to truncate.

    Raises:
        ConfigError: the tokenizer has no chat template, or its template has no
            ``{% generation %}`` block (no way to tell assistant tokens apart).
    """

    def __init__(self, config: TokenizeConfig) -> None:
        from tokenizers import Tokenizer

        self.config = config
        self.tokenizer = load_tokenizer(config.tokenizer)
        template = self.tokenizer.chat_template
        if not isinstance(template, str):
            raise ConfigError(
                f"tokenizer {config.tokenizer!r} has no chat template (or several); gold "
                "tokenization needs one template with {% generation %} blocks"
            )
        if not _GENERATION_TAG.search(template):
            raise ConfigError(
                f"the chat template of tokenizer {config.tokenizer!r} has no "
                "{% generation %}...{% endgeneration %} block, so assistant tokens cannot be "
                "told apart for the loss mask; use a template that marks assistant output"
            )
        # A private copy of the Rust tokenizer: transformers sets truncation and padding on
        # its own instance per call, and apply_chat_template encodes with neither.
        self._backend: Tokenizer = Tokenizer.from_str(self.tokenizer.backend_tokenizer.to_str())
        self._backend.no_truncation()
        self._backend.no_padding()
        self._backend.encode_special_tokens = bool(self.tokenizer.split_special_tokens)
        special_tokens: Mapping[str, Any] = self.tokenizer.special_tokens_map
        self._renderer = make_renderer(template, special_tokens)
        self._control_tokens = sorted(
            {
                token.content
                for token in self.tokenizer.added_tokens_decoder.values()
                if token.special
            }
        )

    @property
    def vocab_hash(self) -> str:
        """SHA-256 of the tokenizer itself: vocab, merges, normalizer, special tokens."""
        return hashlib.sha256(self._backend.to_str().encode()).hexdigest()

    @property
    def fingerprint(self) -> str:
        """SHA-256 (16 hex digits) of the tokenizer and its template: record it with the data."""
        digest = hashlib.sha256(self._backend.to_str().encode())
        digest.update(str(self.tokenizer.chat_template).encode())
        return digest.hexdigest()[:16]

    def render(self, messages: pa.Array | pa.ChunkedArray) -> list[Rendered | RenderError]:
        """Template text and assistant spans per conversation of a ``messages`` column."""
        return self._renderer.render_column(messages)

    def encode(self, rendered: Sequence[Rendered]) -> EncodedBatch:
        """Token ids and assistant masks of rendered conversations, from one ``encode_batch``."""
        encodings = self._backend.encode_batch(
            [text for text, _ in rendered], add_special_tokens=False
        )
        return EncodedBatch.from_encodings(encodings, [spans for _, spans in rendered])

    def tokenize(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        """Tokenize a batch with ``record_id`` and ``messages`` columns.

        Returns:
            ``kept`` in the :data:`TOKENIZED` schema, input order; ``rejected`` holds, in the
            ``silver.rejections`` schema, conversations the template refuses (``malformed``)
            and those left with no assistant token to train on (``empty``).
        """
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        rendered = self.render(table.column("messages"))
        for hit in find_control_tokens(table.column("messages"), self._control_tokens):
            rendered[hit.row] = ControlTokenError(hit.describe())
        refused: list[tuple[int, str, str]] = [
            (row, RejectionReason.MALFORMED, _refusal_detail(item))
            for row, item in enumerate(rendered)
            if isinstance(item, RenderError)
        ]
        good = [row for row, item in enumerate(rendered) if not isinstance(item, RenderError)]
        encoded = self.encode([item for item in rendered if not isinstance(item, RenderError)])
        full_lengths = encoded.lengths
        if self.config.max_length is not None:
            encoded = encoded.truncate(self.config.max_length, self.config.truncation)
        # An index array, not a list: take() converts a Python list element by element.
        good_rows = pa.array(np.asarray(good, dtype=np.int64), type=pa.int64())
        kept = _tokenized_table(table.column("record_id").take(good_rows), encoded, full_lengths)
        trainable = kept.column("num_trainable_tokens").to_numpy()
        if not trainable.all():
            detail = "no assistant tokens to train on"
            if self.config.max_length is not None:
                detail += f" within max_length {self.config.max_length}"
            refused += [
                (good[row], RejectionReason.EMPTY, detail) for row in np.flatnonzero(trainable == 0)
            ]
            kept = kept.filter(pa.array(trainable > 0))
        return StepResult(kept=kept, rejected=_rejections(table, sorted(refused)))


class ControlTokenError(RenderError):
    """A message spells a control token of the tokenizer (see :mod:`.control_tokens`)."""


def _refusal_detail(error: RenderError) -> str:
    if isinstance(error, ControlTokenError):
        return str(error)
    return f"chat template refused the conversation: {error}"


def _tokenized_table(
    record_ids: pa.ChunkedArray, encoded: EncodedBatch, untruncated_lengths: npt.NDArray[np.int64]
) -> pa.Table:
    offsets = pa.array(encoded.starts.astype(np.int32))
    lengths = encoded.lengths
    return pa.table(
        {
            "record_id": record_ids,
            "input_ids": pa.ListArray.from_arrays(offsets, pa.array(encoded.ids)),
            "assistant_masks": pa.ListArray.from_arrays(offsets, pa.array(encoded.masks)),
            "num_tokens": pa.array(lengths.astype(np.int32)),
            "num_trainable_tokens": pa.array(encoded.trainable_per_row().astype(np.int32)),
            "truncated": pa.array(lengths < untruncated_lengths),
        },
        schema=TOKENIZED,
    )


def _rejections(table: pa.Table, refused: Sequence[tuple[int, str, str]]) -> pa.Table:
    """``silver.rejections`` rows for ``(row index, reason, detail)`` of ``table``."""
    return rejections_of(
        table, [(row, RecordError(str(reason), detail)) for row, reason, detail in refused]
    )


@lru_cache(maxsize=4)
def chat_tokenizer(config: TokenizeConfig) -> ChatTokenizer:
    """The :class:`ChatTokenizer` for ``config``, built once per process (and Ray worker)."""
    return ChatTokenizer(config)


@dataclass(frozen=True)
class TokenizeStep:
    """Picklable stage (:mod:`posttrain.platform.steps`): a batch in, a :class:`StepResult` out."""

    config: TokenizeConfig
    name: str = "tokenize"

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        return chat_tokenizer(self.config).tokenize(batch)


def tokenize_conversations(
    conversations: pa.Table | Iterable[pa.RecordBatch],
    config: TokenizeConfig,
    executor: Executor | None = None,
    *,
    batch_rows: int = TOKENIZE_BATCH_ROWS,
) -> StepResult:
    """Tokenize every conversation (``record_id`` + ``messages``), in input order.

    A conversation that makes tokenization raise is refused (reason ``stage_error``), like
    one the template refuses, instead of failing the whole run.

    Args:
        conversations: a table, or record batches streamed from the warehouse.
        config: tokenizer and truncation.
        executor: Ray, or in-process; the result is the same. Default: this process,
            :data:`PIPELINED_BATCHES` batches at a time.
        batch_rows: rows per task when ``conversations`` is a table.
    """
    chat_tokenizer(config)  # fail on a bad tokenizer before any work is scheduled
    return run_stages(
        TokenizeStep(config),
        conversations,
        executor or ThreadExecutor(PIPELINED_BATCHES),
        batch_rows=batch_rows,
        kept_schema=TOKENIZED,
    )
