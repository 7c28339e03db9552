"""A batch of tokenized conversations as flat arrays, and its assistant-only loss mask.

``apply_chat_template(..., return_assistant_tokens_mask=True)`` marks every token that
overlaps a ``{% generation %}`` character span. :meth:`EncodedBatch.from_encodings` does the
same for a whole ``encode_batch`` result, asking each encoding for a handful of tokens per
span instead of reading all its offsets (which costs more than the encoding itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from itertools import chain
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from posttrain.platform.gold.chat_render import Span

if TYPE_CHECKING:
    from tokenizers import Encoding


class Truncation(StrEnum):
    """Which end of an over-long conversation survives (TRL's ``truncation_mode`` names)."""

    KEEP_START = "keep_start"
    KEEP_END = "keep_end"


@dataclass(frozen=True)
class EncodedBatch:
    """Token ids and masks of a batch, flat, with row boundaries ``starts`` (length n + 1)."""

    ids: npt.NDArray[np.int32]
    masks: npt.NDArray[np.int8]
    starts: npt.NDArray[np.int64]

    @classmethod
    def from_encodings(
        cls, encodings: Sequence[Encoding], spans: Sequence[Sequence[Span]]
    ) -> EncodedBatch:
        """Ids of every encoding and the mask of tokens overlapping each row's spans."""
        starts = np.zeros(len(encodings) + 1, dtype=np.int64)
        np.cumsum(
            np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings)), out=starts[1:]
        )
        ids = np.fromiter(
            chain.from_iterable(encoding.ids for encoding in encodings),
            dtype=np.int32,
            count=int(starts[-1]),
        )
        return cls(ids, assistant_mask(encodings, spans, starts), starts)

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        return np.diff(self.starts)

    def truncate(self, max_length: int, truncation: Truncation) -> EncodedBatch:
        """Every row cut to at most ``max_length`` tokens, keeping the chosen end."""
        lengths = self.lengths
        if lengths.size == 0 or int(lengths.max()) <= max_length:
            return self
        position = np.arange(self.ids.size) - np.repeat(self.starts[:-1], lengths)
        if truncation is Truncation.KEEP_START:
            keep = position < max_length
        else:
            keep = position >= np.repeat(lengths - max_length, lengths)
        new_starts = np.zeros_like(self.starts)
        np.cumsum(np.minimum(lengths, max_length), out=new_starts[1:])
        return EncodedBatch(self.ids[keep], self.masks[keep], new_starts)

    def trainable_per_row(self) -> npt.NDArray[np.int64]:
        """How many tokens of each row the mask marks."""
        marked = np.flatnonzero(self.masks)
        return np.searchsorted(marked, self.starts[1:]) - np.searchsorted(marked, self.starts[:-1])


def _reference_mask(encoding: Encoding, spans: Sequence[Span]) -> list[int]:
    """``apply_chat_template``'s own span-to-token loop, for rows the fast mapping cannot do."""
    mask = [0] * len(encoding)
    span_index = 0
    for token, (token_start, token_end) in enumerate(encoding.offsets):
        while span_index < len(spans) and token_start >= spans[span_index][1]:
            span_index += 1
        if span_index == len(spans):
            break
        if token_end > spans[span_index][0]:
            mask[token] = 1
    return mask


def _token_range(
    encoding: Encoding, start: int, end: int, num_tokens: int
) -> tuple[int, int] | None:
    """Tokens ``[first, stop)`` overlapping characters ``[start, end)``; ``None`` if unsure.

    ``apply_chat_template`` marks every token overlapping a span. With offsets in text order
    (true for BPE tokenizers) those tokens are one run, found from the tokens holding the
    span's first and last characters, widened over neighbours that share a character (the
    byte pieces of one multi-byte character). Reading ``encoding.offsets`` whole costs more
    than encoding itself, so this asks for a handful of tokens instead.
    """
    if start >= end:
        return None
    first = encoding.char_to_token(start)
    last = encoding.char_to_token(end - 1)
    if first is None or last is None:
        return None
    while first > 0 and _token_chars(encoding, first - 1)[1] > start:
        first -= 1
    while last + 1 < num_tokens and _token_chars(encoding, last + 1)[0] < end:
        last += 1
    return first, last + 1


def _token_chars(encoding: Encoding, token: int) -> tuple[int, int]:
    chars = encoding.token_to_chars(token)
    assert chars is not None, "every token of a single-sequence encoding has offsets"
    return chars


def assistant_mask(
    encodings: Sequence[Encoding], spans: Sequence[Sequence[Span]], starts: npt.NDArray[np.int64]
) -> npt.NDArray[np.int8]:
    """1 for every token overlapping one of its row's spans, flat (rows at ``starts``)."""
    masks = np.zeros(int(starts[-1]), dtype=np.int8)
    for row, (encoding, row_spans) in enumerate(zip(encodings, spans, strict=True)):
        base = int(starts[row])
        num_tokens = int(starts[row + 1]) - base
        ranges = [_token_range(encoding, start, end, num_tokens) for start, end in row_spans]
        if any(token_range is None for token_range in ranges):
            masks[base : base + num_tokens] = _reference_mask(encoding, row_spans)
            continue
        for first, stop in ranges:  # type: ignore[misc]
            masks[base + first : base + stop] = 1
    return masks
