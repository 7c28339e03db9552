"""Whole-function fingerprints: a benchmark function found again under other names.

Word n-grams miss a benchmark solution leaked without its prompt: a short solution has
few 13-grams, and renaming the function and its variables breaks the rest. Here each
benchmark item contributes one fingerprint per ``def`` in its text: the hash of the code
tokens (:mod:`.code`) from that ``def`` to the end of the item, where every renamable
identifier is encoded by the distance back to its previous occurrence inside the window
(0 for the first), so any consistent renaming gives the same fingerprint (a parameterized
match, as in Baker's p-strings). Docstrings and comments are not part of it.

A document matches when the tokens from one of its ``def`` on, over exactly as many
tokens as a fingerprint covers, hash to that fingerprint: the function, renamed, is in the
document (more code may follow it). Fingerprints shorter than ``min_tokens`` tokens or with
fewer than ``min_words`` informative tokens (keywords, builtins, attributes, numbers,
strings) are left out: ``def f(x): return x`` is everywhere.

Measured on the 164 HumanEval problems (``bench/decontam_quality.py --code``): the
canonical solution under the problem's signature with the function renamed is found for
162 (0.988), with every variable renamed as well for 160 (0.976), and none of 2,983
standard-library functions matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from posttrain.platform.decontam.code import DEF_HASH, CodeTokens, code_token_stream
from posttrain.platform.decontam.ngrams import _position_multipliers

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

MAX_FUNCTION_TOKENS = 512
"""A fingerprint covers at most this many tokens (the start of a longer function)."""
_MULTIPLIERS = _position_multipliers(MAX_FUNCTION_TOKENS)
_IDENTIFIER_SEED = np.uint64(0x1D5EED)
_MIX = np.uint64(0xBF58476D1CE4E5B9)
_STARTS_PER_CHUNK = 1024


def _prefix_hashes(tokens: CodeTokens, starts: I64, width: int) -> tuple[U64, I64]:
    """Hash of the first ``k + 1`` tokens from each start (column ``k``), and how many
    tokens each start has before its document ends (at most ``width``)."""
    count = len(tokens.hashes)
    offsets = np.arange(width, dtype=np.int64)
    positions = starts[:, None] + offsets[None, :]
    clipped = np.minimum(positions, count - 1)
    inside = (positions < count) & (tokens.doc[clipped] == tokens.doc[starts][:, None])
    back = tokens.back[clipped]
    # An identifier seen earlier in the window is named by its distance back; one seen only
    # before the window (or never) is new: a renaming cannot change either.
    code = np.where(back <= offsets[None, :], back, 0).astype(np.uint64)
    with np.errstate(over="ignore"):
        named = (code + _IDENTIFIER_SEED) * _MIX
        named ^= named >> np.uint64(29)
        values = np.where(tokens.identifier[clipped], named, tokens.hashes[clipped])
        hashes: U64 = np.cumsum(values * _MULTIPLIERS[:width][None, :], axis=1, dtype=np.uint64)
    # ``inside`` is a prefix of each row: a document does not resume after it ends.
    return hashes, inside.sum(axis=1).astype(np.int64)


@dataclass(frozen=True)
class FunctionIndex:
    """Fingerprints of the functions in benchmark items; picklable (numpy arrays only).

    Item numbers are those of the :class:`~posttrain.platform.decontam.index.NgramIndex`
    that holds this index.
    """

    min_tokens: int
    min_words: int
    fingerprints: U64  # sorted
    items: I32  # item of each fingerprint
    lengths: I64  # distinct fingerprint lengths, ascending

    @classmethod
    def build(cls, texts: Sequence[str], *, min_tokens: int, min_words: int) -> FunctionIndex:
        """Fingerprint every ``def`` of every item text (item ``k`` is ``texts[k]``)."""
        tokens = code_token_stream(list(texts))
        starts = np.flatnonzero(tokens.hashes == DEF_HASH)
        if len(starts) == 0:
            return cls(min_tokens, min_words, *_empty())
        ends = np.searchsorted(tokens.doc, tokens.doc[starts], side="right")
        lengths = np.minimum(ends - starts, MAX_FUNCTION_TOKENS)
        words = np.cumsum(np.concatenate(([0], tokens.is_word.astype(np.int64))))
        informative = words[starts + lengths] - words[starts]
        keep = (lengths >= min_tokens) & (informative >= min_words)
        starts, lengths = starts[keep], lengths[keep]
        if len(starts) == 0:
            return cls(min_tokens, min_words, *_empty())
        hashes, _ = _prefix_hashes(tokens, starts, int(lengths.max()))
        fingerprints = hashes[np.arange(len(starts)), lengths - 1]
        items = tokens.doc[starts].astype(np.int32)
        order = np.lexsort((items, fingerprints))
        return cls(
            min_tokens,
            min_words,
            fingerprints[order],
            items[order],
            np.unique(lengths).astype(np.int64),
        )

    @property
    def num_functions(self) -> int:
        return len(self.fingerprints)

    def match(self, tokens: CodeTokens, num_docs: int) -> tuple[I64, I32]:
        """Per document: the item with most functions found in it (ties: lowest item;
        -1 without any) and how many of its functions were found."""
        item = np.full(num_docs, -1, dtype=np.int64)
        matched = np.zeros(num_docs, dtype=np.int32)
        starts = np.flatnonzero(tokens.hashes == DEF_HASH)
        if self.num_functions == 0 or len(starts) == 0:
            return item, matched
        width = int(self.lengths[-1])
        found_doc: list[int] = []
        found_item: list[int] = []
        for first in range(0, len(starts), _STARTS_PER_CHUNK):
            chunk = starts[first : first + _STARTS_PER_CHUNK]
            hashes, available = _prefix_hashes(tokens, chunk, width)
            for length in self.lengths.tolist():
                rows = np.flatnonzero(available >= length)
                if len(rows) == 0:
                    break  # lengths ascend: no longer window fits either
                candidates = hashes[rows, length - 1]
                slot = np.minimum(
                    np.searchsorted(self.fingerprints, candidates), self.num_functions - 1
                )
                hit = self.fingerprints[slot] == candidates
                # A fingerprint may belong to several items; each hit counts for all.
                for row, position in zip(rows[hit], slot[hit], strict=True):
                    end = np.searchsorted(
                        self.fingerprints, self.fingerprints[position], side="right"
                    )
                    for k in range(int(position), int(end)):
                        found_doc.append(int(tokens.doc[chunk[row]]))
                        found_item.append(int(self.items[k]))
        if not found_doc:
            return item, matched
        unique = np.unique(np.array([found_doc, found_item]), axis=1, return_counts=True)
        pairs: I64 = unique[0]
        counts: I64 = unique[1]
        order = np.lexsort((pairs[1], -counts, pairs[0]))
        pairs, counts = pairs[:, order], counts[order]
        best = np.ones(pairs.shape[1], dtype=bool)
        best[1:] = pairs[0, 1:] != pairs[0, :-1]
        item[pairs[0, best]] = pairs[1, best]
        matched[pairs[0, best]] = counts[best]
        return item, matched


def _empty() -> tuple[U64, I32, I64]:
    return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
