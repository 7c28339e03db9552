"""Code tokens with identifiers normalized: n-grams that survive renaming.

Word n-grams (:mod:`.ngrams`) catch a leaked benchmark solution only when it keeps enough
of the benchmark's words; a short solution pasted under another function name, with its
variables renamed and without its docstring, shares few or none. Here a text is read as
Python-like code instead:

1. String literals (single, double, triple quoted) become one token ``STR`` (their text
   and quote style do not count), and ``#`` comments are dropped.
2. Tokens are identifiers and numbers (runs of letters, digits and ``_``) and every other
   non-blank character on its own (``(``, ``=``, ``:``, ...), so operators and brackets,
   which carry the structure of the code, are part of the n-gram.
3. An identifier that is not a Python keyword, not a builtin name and not an attribute
   (right after ``.``) becomes ``ID``: ``def f(xs): return sorted(xs)[::-1]`` and
   ``def g(a): return sorted(a)[::-1]`` give the same tokens. Keywords, builtins,
   attribute and method names (``.append``, ``.join``) and numbers are kept as written.

Every step is an Arrow kernel over the whole batch, except classifying and hashing each
*distinct* token of the batch (a short Python loop over its vocabulary), as in
:mod:`.ngrams`. ``is_word`` marks the tokens that say something about the code (kept
identifiers, keywords, numbers and ``STR``), so an index can leave out n-grams made mostly
of ``ID`` and punctuation.

Example:
    >>> code_tokens("def mine(xs):  # sort\\n    return sorted(xs, key=len)[::-1]")
    ['def', 'ID', '(', 'ID', ')', ':', 'return', 'sorted', '(', 'ID', ',', 'ID', '=', 'len', \
')', '[', ':', ':', '-', '1', ']']
"""

from __future__ import annotations

import builtins
import keyword
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

# RE2 syntax (Arrow's regex engine). Triple-quoted strings first, so they are one literal.
_STRING = (
    r'(?s:""".*?"""' + r"|'''.*?''')"
    r'|"(?:[^"\\\n]|\\.)*"'
    r"|'(?:[^'\\\n]|\\.)*'"
)
_COMMENT = r"#[^\n]*"
# Only word characters, so the punctuation split leaves it whole.
_STRING_TOKEN = "__posttrain_str__"
_PUNCTUATION = r"([^\w\s])"
_HASH_SEED = 0xC0DE
_KEPT = frozenset(keyword.kwlist) | frozenset(keyword.softkwlist) | frozenset(dir(builtins))
ID = "ID"
STR = "STR"


def _split(texts: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Raw code tokens of every text and the document each belongs to."""
    text = pc.replace_substring_regex(texts, _STRING, f" {_STRING_TOKEN} ")
    text = pc.replace_substring_regex(text, _COMMENT, " ")
    text = pc.replace_substring_regex(text, _PUNCTUATION, r" \1 ")
    pieces = pc.utf8_split_whitespace(text)
    tokens, doc = pc.list_flatten(pieces), pc.list_parent_indices(pieces)
    non_empty = pc.greater(pc.binary_length(tokens), 0)
    return tokens.filter(non_empty), doc.filter(non_empty)


def _classify(token: str) -> tuple[str, bool, bool]:
    """``(normalized, is_word, is_identifier)`` of one distinct raw token."""
    if token == _STRING_TOKEN:
        return STR, True, False
    if token.isidentifier():
        if token in _KEPT:
            return token, True, False
        return ID, False, True
    if token[:1].isdigit():
        return token, True, False
    return token, False, False


def _hash(text: str) -> int:
    return xxhash.xxh64_intdigest(text.encode(), _HASH_SEED)


DEF_HASH = np.uint64(_hash("def"))
_COLON_HASH = np.uint64(_hash(":"))
_STR_HASH = np.uint64(_hash(STR))


@dataclass(frozen=True)
class CodeTokens:
    """Code tokens of many documents laid end to end (see the module docstring).

    ``hashes[i]`` is the hash of token ``i``'s normalized form (all ``ID`` the same);
    ``identifier[i]`` marks renamable identifiers and ``back[i]`` is, for those, how many
    tokens back the same identifier last occurred in the document (0: first occurrence).
    A string literal right after ``:`` (a docstring, or a dict value) is left out, so a
    function compares equal with and without its docstring.
    """

    hashes: U64
    doc: I64
    is_word: npt.NDArray[np.bool_]
    identifier: npt.NDArray[np.bool_]
    back: I64


def code_token_stream(
    texts: pa.Array | pa.ChunkedArray | list[str | None], owner: I64 | None = None
) -> CodeTokens:
    """Code tokens of ``texts`` (nulls are empty documents).

    Args:
        texts: one string per segment.
        owner: the document each segment belongs to (ascending); default: its own.
    """
    if isinstance(texts, list):
        texts = pa.array(texts, type=pa.large_string())
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks != 1 else texts.chunk(0)
    tokens, segment = _split(texts)
    if len(tokens) == 0:
        empty = np.empty(0, dtype=np.int64)
        return CodeTokens(
            np.empty(0, dtype=np.uint64), empty, np.empty(0, dtype=bool),
            np.empty(0, dtype=bool), empty,
        )  # fmt: skip
    encoded = pc.dictionary_encode(tokens)
    vocabulary = encoded.dictionary.to_pylist()
    classes = [_classify(token) for token in vocabulary]
    count = len(vocabulary)
    hashes = np.fromiter((_hash(name) for name, _, _ in classes), dtype=np.uint64, count=count)
    raw_hashes = np.fromiter((_hash(token) for token in vocabulary), dtype=np.uint64, count=count)
    word = np.fromiter((w for _, w, _ in classes), dtype=bool, count=count)
    renamable = np.fromiter((i for _, _, i in classes), dtype=bool, count=count)
    indices = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    doc = segment.to_numpy(zero_copy_only=False).astype(np.int64)
    if owner is not None:
        doc = owner[doc]
    token_hashes = hashes[indices]
    docstring = np.zeros(len(indices), dtype=bool)
    docstring[1:] = (
        (token_hashes[1:] == _STR_HASH) & (token_hashes[:-1] == _COLON_HASH) & (doc[1:] == doc[:-1])
    )
    indices, doc = indices[~docstring], doc[~docstring]
    token_hashes = hashes[indices]
    identifier = renamable[indices]
    is_word = word[indices]
    # An attribute or method name (right after ".") keeps its name: renaming a variable
    # does not rename ``.append``.
    dot = next((k for k, token in enumerate(vocabulary) if token == "."), None)
    if dot is not None:
        after_dot = np.zeros(len(indices), dtype=bool)
        after_dot[1:] = (indices[:-1] == dot) & (doc[1:] == doc[:-1])
        attribute = after_dot & identifier
        token_hashes = np.where(attribute, raw_hashes[indices], token_hashes)
        identifier = identifier & ~attribute
        is_word = is_word | attribute
    return CodeTokens(token_hashes, doc, is_word, identifier, _back(indices, doc, identifier))


def _back(indices: I64, doc: I64, identifier: npt.NDArray[np.bool_]) -> I64:
    """Distance to the previous occurrence of the same identifier in the same document."""
    position = np.arange(len(indices), dtype=np.int64)
    key = np.where(identifier, indices, -1)
    order = np.lexsort((position, key, doc))
    same = np.zeros(len(order), dtype=bool)
    same[1:] = (key[order][1:] == key[order][:-1]) & (doc[order][1:] == doc[order][:-1])
    back = np.zeros(len(indices), dtype=np.int64)
    back[order[1:][same[1:]]] = np.diff(position[order])[same[1:]]
    back[~identifier] = 0
    return back


def code_tokens(text: str) -> list[str]:
    """The normalized code tokens of one text (for documentation, tests and debugging)."""
    tokens, _ = _split(pa.array([text], type=pa.large_string()))
    names = [_classify(token) for token in tokens.to_pylist()]
    out: list[str] = []
    for k, (name, _, identifier) in enumerate(names):
        raw = tokens[k].as_py()
        out.append(raw if identifier and k and tokens[k - 1].as_py() == "." else name)
    return out
