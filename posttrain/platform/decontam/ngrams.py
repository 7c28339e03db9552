"""Normalized word tokens and hashed word n-grams, computed over whole Arrow columns.

Normalization, in order (every step is vectorized with Arrow compute kernels except the
hashing of each *distinct* token, which is a short Python loop over the batch vocabulary):

1. Unicode NFKC, so full-width letters, ligatures and compatibility forms compare equal.
2. camelCase boundaries become word boundaries (``hasCloseElements`` → ``has Close
   Elements``), so a renamed identifier style still shares its words.
3. Tokens are maximal runs of letters and digits. Everything else — punctuation, quotes,
   operators, brackets, underscores, whitespace and indentation — only separates tokens,
   which makes code compare equal across re-indentation, changed quote style, changed
   spacing around operators and ``snake_case``/``camelCase`` spelling.
4. Each token is case-folded (:meth:`str.casefold`) and hashed with xxhash64.

An n-gram is ``n`` consecutive tokens of one document; its 64-bit hash combines the token
hashes with position-dependent odd multipliers (arithmetic mod 2**64), so all n-grams of
a batch are computed with ``n`` vectorized multiply-adds instead of hashing each n-gram
string in Python.

Example:
    >>> normalized_tokens("def hasClose(x):  return 'A_b'")
    ['def', 'has', 'close', 'x', 'return', 'a', 'b']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from posttrain.platform.decontam.config import MAX_NGRAM

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

# RE2 syntax (Arrow's regex engine).
_CAMEL_BOUNDARY = r"(\p{Ll}|\p{Nd})(\p{Lu})"
_TOKEN_SEPARATOR = r"[^\p{L}\p{N}]+"
_HASH_SEED = 0x5EED


def _position_multipliers(count: int) -> U64:
    """Fixed odd 64-bit multipliers, one per position inside an n-gram (splitmix64 stream)."""
    state = 0x9E3779B97F4A7C15
    mask = (1 << 64) - 1
    values = []
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        values.append((z ^ (z >> 31)) | 1)
    return np.array(values, dtype=np.uint64)


_MULTIPLIERS = _position_multipliers(MAX_NGRAM)


@dataclass(frozen=True)
class TokenStream:
    """Token hashes of many documents laid end to end; ``doc[i]`` is token ``i``'s document.

    ``is_word[i]`` tells whether token ``i`` is a word — at least two characters and not a
    number — as opposed to a digit run or a single letter (``0``, ``1``, ``x``, ``a``).
    """

    hashes: U64
    doc: I64
    is_word: npt.NDArray[np.bool_]


@dataclass(frozen=True)
class NgramStream:
    """Hashes of every n-gram of many documents, with the document each one comes from."""

    hashes: U64
    doc: I64


def _as_string_array(texts: pa.Array | pa.ChunkedArray | list[str | None]) -> pa.Array:
    if isinstance(texts, list):
        return pa.array(texts, type=pa.large_string())
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    return texts


def token_stream(texts: pa.Array | pa.ChunkedArray | list[str | None]) -> TokenStream:
    """Normalize and tokenize ``texts`` (nulls are empty documents) and hash every token.

    Args:
        texts: one string per document.

    Returns:
        The token hashes of all documents in order, each tagged with its document index.
    """
    array = _as_string_array(texts)
    normalized = pc.utf8_normalize(array, "NFKC")
    normalized = pc.replace_substring_regex(normalized, _CAMEL_BOUNDARY, r"\1 \2")
    pieces = pc.split_pattern_regex(normalized, _TOKEN_SEPARATOR)
    doc = pc.list_parent_indices(pieces)
    tokens = pc.list_flatten(pieces)
    non_empty = pc.greater(pc.binary_length(tokens), 0)
    tokens = tokens.filter(non_empty)
    doc = doc.filter(non_empty)
    if len(tokens) == 0:
        return TokenStream(
            np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)
        )
    encoded = pc.dictionary_encode(tokens)
    vocabulary = encoded.dictionary.to_pylist()
    vocabulary_hashes = np.fromiter(
        (xxhash.xxh64_intdigest(token.casefold().encode(), _HASH_SEED) for token in vocabulary),
        dtype=np.uint64,
        count=len(vocabulary),
    )
    vocabulary_is_word = np.fromiter(
        (len(token) > 1 and not token.isdecimal() for token in vocabulary),
        dtype=bool,
        count=len(vocabulary),
    )
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    return TokenStream(
        vocabulary_hashes[indices],
        doc.to_numpy(zero_copy_only=False).astype(np.int64),
        vocabulary_is_word[indices],
    )


def ngram_stream(tokens: TokenStream, n: int) -> NgramStream:
    """Hash every window of ``n`` consecutive tokens that lies inside one document.

    Documents shorter than ``n`` tokens contribute no n-grams.
    """
    if not 1 <= n <= MAX_NGRAM:
        raise ValueError(f"n-gram size must be between 1 and {MAX_NGRAM}, got {n}")
    windows = len(tokens.hashes) - n + 1
    if windows <= 0:
        return NgramStream(np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64))
    inside_one_doc = tokens.doc[:windows] == tokens.doc[n - 1 :]
    combined = np.zeros(windows, dtype=np.uint64)
    for position in range(n):
        # uint64 array arithmetic wraps around (mod 2**64), which is what a hash wants.
        combined += tokens.hashes[position : position + windows] * _MULTIPLIERS[position]
    return NgramStream(combined[inside_one_doc], tokens.doc[:windows][inside_one_doc])


def distinct_words_per_ngram(tokens: TokenStream, n: int) -> npt.NDArray[np.int64]:
    """For each n-gram of :func:`ngram_stream` (same order), how many distinct words it holds.

    Used to leave out of the index n-grams such as ``0 1 2 3 4 5 6 7 8 9 a b c`` or
    ``for i in range len l for j in range i 1 len``, which occur in unrelated code.
    """
    windows = len(tokens.hashes) - n + 1
    if windows <= 0:
        return np.empty(0, dtype=np.int64)
    inside_one_doc = tokens.doc[:windows] == tokens.doc[n - 1 :]
    # Non-words become 0 so they sort first and are not counted.
    word_hashes = np.where(tokens.is_word, tokens.hashes, np.uint64(0))
    rows = np.sort(np.lib.stride_tricks.sliding_window_view(word_hashes, n)[inside_one_doc], axis=1)
    starts_new = np.ones(rows.shape, dtype=bool)
    starts_new[:, 1:] = rows[:, 1:] != rows[:, :-1]
    counts: npt.NDArray[np.int64] = np.count_nonzero(starts_new & (rows != 0), axis=1)
    return counts


def text_ngrams(texts: pa.Array | pa.ChunkedArray | list[str | None], n: int) -> NgramStream:
    """:func:`ngram_stream` of :func:`token_stream`: the n-gram hashes of every document."""
    return ngram_stream(token_stream(texts), n)


def normalized_tokens(text: str) -> list[str]:
    """The tokens of one text after normalization (for documentation, tests and debugging)."""
    normalized = pc.utf8_normalize(pa.array([text]), "NFKC")
    normalized = pc.replace_substring_regex(normalized, _CAMEL_BOUNDARY, r"\1 \2")
    pieces = pc.split_pattern_regex(normalized, _TOKEN_SEPARATOR)[0].as_py() or []
    return [piece.casefold() for piece in pieces if piece]
