"""Gold layer: silver conversations become TRL-ready SFT data.

- :mod:`.tokenize`: chat-template tokenization with an assistant-only loss mask, identical
  to ``apply_chat_template(..., return_assistant_tokens_mask=True)``, batched over Arrow
  record batches through an executor (in-process or Ray).
- :mod:`.chat_render` and :mod:`.encoded`: its two halves, template rendering with
  assistant character spans, and span-to-token masks over flat token arrays.
- :mod:`.packing`: best-fit-decreasing packing into ``gold.sft_packed`` rows in TRL's
  padding-free layout (``input_ids``, ``assistant_masks``, ``seq_lengths``, ``record_ids``).
- ``tokenizer/posttrain-chat-8k/``: the small tokenizer shipped so everything works offline
  (rebuilt by ``scripts/make_tokenizer.py``).

Training on the result:

- ``gold.sft`` (``messages``): ``SFTTrainer(..., args=SFTConfig(assistant_only_loss=True))``.
- ``gold.sft_packed``: ``SFTConfig(padding_free=True, max_length=None)``, packing off (the rows
  are already packed); TRL builds ``labels`` from ``assistant_masks`` and position ids from
  ``seq_lengths``.
"""

from posttrain.platform.gold.encoded import EncodedBatch, Truncation
from posttrain.platform.gold.packing import (
    Overflow,
    PackConfig,
    PackingError,
    PackResult,
    PackStats,
    best_fit_decreasing,
    pack_sequences,
)
from posttrain.platform.gold.tokenize import (
    SHIPPED_TOKENIZER,
    TOKENIZED,
    ChatTokenizer,
    TokenizeConfig,
    TokenizeStep,
    chat_tokenizer,
    load_tokenizer,
    tokenize_conversations,
)

__all__ = [
    "SHIPPED_TOKENIZER",
    "TOKENIZED",
    "ChatTokenizer",
    "EncodedBatch",
    "Overflow",
    "PackConfig",
    "PackResult",
    "PackStats",
    "PackingError",
    "TokenizeConfig",
    "TokenizeStep",
    "Truncation",
    "best_fit_decreasing",
    "chat_tokenizer",
    "load_tokenizer",
    "pack_sequences",
    "tokenize_conversations",
]
