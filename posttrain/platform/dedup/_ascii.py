"""The ASCII fast path of :mod:`.normalize`: the same rules, on raw bytes with numpy.

Most texts are pure ASCII, where NFKC and format-character removal change nothing and
case, whitespace and punctuation are properties of single bytes. Arrow's regex kernels
spend most of their time on the many small matches of whitespace runs and punctuation in
such texts; a byte lookup table does the same in a few vectorized passes. The Unicode
path stays the definition: a test checks both paths agree on every ASCII character.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _byte_table(predicate: object) -> np.ndarray:
    table = np.zeros(256, dtype=bool)
    for byte in range(128):
        table[byte] = bool(predicate(chr(byte)))  # type: ignore[operator]
    return table


# Python's str.isspace() on ASCII is exactly the normalize module's whitespace class.
SPACE = _byte_table(str.isspace)
SEPARATOR = _byte_table(lambda c: c.isspace() or unicodedata.category(c)[0] in "PS")


def _buffers(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of ``texts`` and their offsets (relative to the first text)."""
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32)[
        texts.offset : texts.offset + len(texts) + 1
    ]
    data_buffer = texts.buffers()[2]
    data = (
        np.frombuffer(data_buffer, dtype=np.uint8)
        if data_buffer is not None
        else np.zeros(0, np.uint8)
    )
    return data[offsets[0] : offsets[-1]], (offsets - offsets[0]).astype(np.int64)


def _string_array(data: np.ndarray, offsets: np.ndarray, validity: pa.Buffer | None) -> pa.Array:
    return pa.StringArray.from_buffers(
        len(offsets) - 1,
        pa.py_buffer(offsets.astype(np.int32)),
        pa.py_buffer(np.ascontiguousarray(data)),
        validity,
    )


def _starts_mask(size: int, offsets: np.ndarray) -> np.ndarray:
    """True at the first byte of every non-empty text."""
    mask = np.zeros(size, dtype=bool)
    mask[offsets[:-1][offsets[:-1] < offsets[1:]]] = True
    return mask


def _counts_per_text(mask: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """How many bytes of each text ``mask`` marks.

    Lists the positions of the rarer value and bisects the text offsets into them: numpy's
    ``add.reduceat`` on booleans casts every element and is ten times slower.
    """
    if 2 * np.count_nonzero(mask) > len(mask):
        unmarked = np.diff(np.searchsorted(np.flatnonzero(~mask), offsets))
        counts: np.ndarray = np.diff(offsets) - unmarked
        return counts
    return np.diff(np.searchsorted(np.flatnonzero(mask), offsets))


def _offsets(counts: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def _collapse_whitespace(
    data: np.ndarray, offsets: np.ndarray, text_start: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bytes and offsets of the texts with whitespace runs → one space, none at a start."""
    is_space = SPACE[data]
    previous_space = np.ones(len(data), dtype=bool)
    previous_space[1:] = is_space[:-1]
    previous_space |= text_start
    keep = ~(is_space & previous_space)
    compact = np.where(is_space, np.uint8(ord(" ")), data)[keep]
    return compact, _offsets(_counts_per_text(keep, offsets))


def _words(
    data: np.ndarray, offsets: np.ndarray, text_start: np.ndarray
) -> tuple[pa.Array, np.ndarray]:
    """The maximal runs of word bytes of every text, flat, and the texts' offsets into them."""
    is_word = ~SEPARATOR[data]
    previous_word = np.zeros(len(data), dtype=bool)
    previous_word[1:] = is_word[:-1]
    previous_word &= ~text_start
    next_word = np.zeros(len(data), dtype=bool)
    next_word[:-1] = is_word[1:]
    next_word[:-1] &= ~text_start[1:]
    is_start = is_word & ~previous_word
    starts = np.flatnonzero(is_start)
    ends = np.flatnonzero(is_word & ~next_word) + 1
    flat = _string_array(data[is_word], _offsets(ends - starts), None)
    return flat, _offsets(_counts_per_text(is_start, offsets))


def ascii_normalize(texts: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Normal forms, flat words and word offsets of ASCII texts, from one pass over the bytes.

    Words are cut from the lower-cased text before whitespace is collapsed: whitespace
    separates words either way, so they are the words of the normal form.
    """
    lowered = pc.ascii_lower(texts.cast(pa.string()))
    data, offsets = _buffers(lowered)
    text_start = _starts_mask(len(data), offsets)
    compact, form_offsets = _collapse_whitespace(data, offsets, text_start)
    validity = lowered.is_valid().buffers()[1] if lowered.null_count else None
    forms = pc.utf8_rtrim_whitespace(_string_array(compact, form_offsets, validity))
    flat, word_offsets = _words(data, offsets, text_start)
    return forms, flat, word_offsets


def ascii_normal_form(texts: pa.Array) -> pa.Array:
    """:func:`.normalize.normal_form` of ASCII texts: lower case, whitespace runs → one
    space, trimmed."""
    lowered = pc.ascii_lower(texts.cast(pa.string()))
    data, offsets = _buffers(lowered)
    compact, form_offsets = _collapse_whitespace(data, offsets, _starts_mask(len(data), offsets))
    validity = lowered.is_valid().buffers()[1] if lowered.null_count else None
    return pc.utf8_rtrim_whitespace(_string_array(compact, form_offsets, validity))


def ascii_words(normalized: pa.Array) -> pa.ListArray:
    """:func:`.normalize.words` of ASCII normal forms, as one list of words per text."""
    data, offsets = _buffers(normalized.cast(pa.string()))
    flat, word_offsets = _words(data, offsets, _starts_mask(len(data), offsets))
    return pa.ListArray.from_arrays(pa.array(word_offsets.astype(np.int32)), flat)
