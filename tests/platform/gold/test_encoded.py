from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from tokenizers import Encoding

from posttrain.platform.gold.encoded import EncodedBatch, Truncation, assistant_mask
from posttrain.platform.gold.tokenize import load_tokenizer


def _encode(text: str) -> Encoding:
    backend = load_tokenizer("posttrain-chat-8k").backend_tokenizer
    return backend.encode(text, add_special_tokens=False)


def _batch(rows: list[list[int]]) -> EncodedBatch:
    starts = np.cumsum([0, *map(len, rows)]).astype(np.int64)
    ids = np.array([t for row in rows for t in row], dtype=np.int32)
    return EncodedBatch(ids, (ids % 2).astype(np.int8), starts)


def test_span_ending_inside_a_multibyte_character_marks_all_its_byte_tokens() -> None:
    text = "ab🌍cd"  # the emoji is several byte-level tokens sharing one character
    encoding = _encode(text)
    emoji_tokens = [i for i, (start, _) in enumerate(encoding.offsets) if start == 2]
    assert len(emoji_tokens) > 1
    mask = assistant_mask([encoding], [[(0, 3)]], np.array([0, len(encoding)]))
    marked = [i for i, bit in enumerate(mask) if bit]
    assert marked[-len(emoji_tokens) :] == emoji_tokens
    assert all(encoding.offsets[i][0] >= 3 for i in range(len(encoding)) if not mask[i])


def test_empty_span_marks_only_a_token_that_strictly_contains_its_position() -> None:
    encoding = _encode("hello world")
    inside = encoding.offsets[0][0] + 1  # inside the first token
    mask = assistant_mask([encoding], [[(inside, inside)]], np.array([0, len(encoding)]))
    assert mask.tolist() == [1] + [0] * (len(encoding) - 1)


@pytest.mark.parametrize(
    ("truncation", "expected"),
    [
        (Truncation.KEEP_START, [[1, 2, 3], [7, 8]]),
        (Truncation.KEEP_END, [[4, 5, 6], [7, 8]]),
    ],
)
def test_truncate_cuts_each_row_from_the_chosen_end(
    truncation: Truncation, expected: list[list[int]]
) -> None:
    cut = _batch([[1, 2, 3, 4, 5, 6], [7, 8]]).truncate(3, truncation)
    bounds = cut.starts.tolist()
    assert [cut.ids[a:b].tolist() for a, b in pairwise(bounds)] == expected
    assert cut.masks.tolist() == [value % 2 for row in expected for value in row]


def test_trainable_per_row_counts_marked_tokens_of_each_row() -> None:
    batch = _batch([[1, 3, 4], [], [5], [2]])
    assert batch.trainable_per_row().tolist() == [2, 0, 1, 0]
