"""Text normalization for dedup, vectorized over Arrow string arrays.

**Normal form** (what the exact hash is taken of), applied in this order:

1. Unicode NFKC: compatibility characters become their plain form (full-width
   ``Ａ`` → ``A``, the ligature ``ﬁ`` → ``fi``, no-break space → space).
2. Lower case (full Unicode case mapping).
3. Invisible format characters (Unicode category Cf: zero-width spaces and joiners,
   soft hyphens, byte-order marks) are removed.
4. Every run of whitespace (ASCII whitespace, vertical tab, the C0 separators, NEL and
   every Unicode separator Z*) becomes one space; leading and trailing whitespace is cut.

So re-indented, re-wrapped, re-cased copies and copies that differ in line endings or
invisible characters have the same normal form; anything else, including punctuation,
still counts.

**Words** (what near-dup shingles are made of): the normal form with every run of
punctuation and symbols (Unicode P* and S*) replaced by a space, split at spaces.
Dropping punctuation makes typographic variants (curly quotes, dashes) and markup the
same words; for code it keeps identifiers and literals, which carry the content.

:data:`NORMALIZATION_VERSION` changes whenever either rule changes, because stored exact
hashes and signatures depend on them.

Pure-ASCII texts (most of them) take a byte-level numpy path that applies the same rules
several times faster than Arrow's Unicode regex kernels (:mod:`._ascii`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.dedup._ascii import (
    ascii_normal_form,
    ascii_separators_to_spaces,
    ascii_words,
)
from posttrain.platform.dedup._numpy import to_numpy

NORMALIZATION_VERSION = 1

# RE2 syntax (Arrow's regex engine). \s in RE2 is [\t\n\f\r ]; the rest are added by hand
# so the rule matches Python's str.split() whitespace plus every Unicode separator.
_WHITESPACE_RUN = r"[\s\x0b\x1c-\x1f\x85\p{Z}]+"
# The runs whose replacement by one space changes something: two or more characters, or one
# other than a space. A lone space, by far the most common match in prose, stays as it is
# instead of being matched and replaced by itself (the regex kernel's cost is per match).
_WHITESPACE_TO_REPLACE = r"[\s\x0b\x1c-\x1f\x85\p{Z}]{2,}|[\t\n\f\r\x0b\x1c-\x1f\x85]|[^\P{Z} ]"
_FORMAT_CHARS = r"\p{Cf}+"
_PUNCTUATION_RUN = r"[\p{P}\p{S}]+"


def _unicode_normal_form(texts: pa.Array) -> pa.Array:
    result = pc.utf8_normalize(texts, form="NFKC")
    result = pc.utf8_lower(result)
    result = pc.replace_substring_regex(result, pattern=_FORMAT_CHARS, replacement="")
    result = pc.replace_substring_regex(result, pattern=_WHITESPACE_TO_REPLACE, replacement=" ")
    return pc.utf8_trim_whitespace(result)


def _unicode_words(normalized: pa.Array) -> pa.ListArray:
    # ASCII punctuation becomes spaces by a byte table first, so the regex only has the
    # other characters' runs to match; empty words are dropped below, so the number of
    # spaces a run leaves makes no difference.
    spaced = pc.replace_substring_regex(
        ascii_separators_to_spaces(normalized), pattern=_PUNCTUATION_RUN, replacement=" "
    )
    split = pc.split_pattern(spaced, pattern=" ")
    flat = pc.list_flatten(split)
    # Lengths, not a comparison with "": converting a Python literal makes pyarrow import
    # pandas (see ._numpy).
    non_empty = to_numpy(pc.binary_length(flat)) > 0
    counts = np.bincount(
        to_numpy(pc.list_parent_indices(split))[non_empty], minlength=len(normalized)
    )
    offsets = np.zeros(len(normalized) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), flat.filter(pa.array(non_empty)))


def non_ascii_rows(texts: pa.Array) -> np.ndarray:
    """Positions of the texts that contain a non-ASCII character (nulls count as ASCII)."""
    is_ascii = pc.fill_null(pc.string_is_ascii(texts), True)
    rows: np.ndarray = np.flatnonzero(~to_numpy(is_ascii))
    return rows


def _flat(lists: pa.ListArray) -> tuple[pa.Array, np.ndarray]:
    offsets = to_numpy(lists.offsets).astype(np.int64)
    return lists.values.slice(offsets[0], offsets[-1] - offsets[0]), offsets - offsets[0]


def unicode_normalize(texts: pa.Array) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Normal forms, flat words and word offsets of any texts, by the Unicode rules."""
    forms = _unicode_normal_form(_array(texts))
    return (forms, *_flat(_unicode_words(forms)))


def _by_path(
    texts: pa.Array,
    ascii_path: Callable[[pa.Array], pa.Array],
    unicode_path: Callable[[pa.Array], pa.Array],
) -> pa.Array:
    """``ascii_path`` of every text, with the non-ASCII rows replaced by ``unicode_path``.

    The ASCII path is harmless on other UTF-8 text (it only touches ASCII bytes), so it
    runs over the whole batch without copying the ASCII rows out first.
    """
    other_rows = non_ascii_rows(texts)
    result = ascii_path(texts)
    if len(other_rows) == 0:
        return result
    replaced = unicode_path(texts.take(pa.array(other_rows)))
    position = np.arange(len(texts))
    position[other_rows] = len(texts) + np.arange(len(other_rows))
    return pa.concat_arrays([result, replaced]).take(pa.array(position))


def _array(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    array = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    return array.cast(pa.string())


def normal_form(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The normal form of every text (nulls stay null).

    Example:
        >>> normal_form(pa.array(["  Ｈello\\u00a0WORLD\\u200b!\\r\\n"])).to_pylist()
        ['hello world!']
    """
    return _by_path(_array(texts), ascii_normal_form, _unicode_normal_form)


def words(normalized: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """The words of every normalized text, flat, and each text's offsets into them.

    Returns ``(flat_words, offsets)``: text ``i`` has the words
    ``flat_words[offsets[i]:offsets[i + 1]]``; a null or empty text has none.

    Example:
        >>> flat, offsets = words(normal_form(pa.array(["Hello, world!", "", "a—b"])))
        >>> flat.to_pylist(), offsets.tolist()
        (['hello', 'world', 'a', 'b'], [0, 2, 2, 4])
    """
    return _flat(_by_path(_array(normalized), ascii_words, _unicode_words))
