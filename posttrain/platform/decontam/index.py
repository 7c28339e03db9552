"""An index of benchmark n-grams: n-gram hash → the benchmark items that contain it.

The index is a few flat numpy arrays (sorted unique hashes, CSR offsets into item
postings, a bitset that rules out almost every n-gram before the binary search) plus the
item names, so it pickles small — about 350 KB for HumanEval's 14,000 13-grams — and the
Ray executor ships it to each worker once per stage.

Example:
    >>> items = ReferenceSet("toy", ("t/1",), ("the quick brown fox jumps over the lazy dog",))
    >>> index = NgramIndex.build([items], ngram=3)
    >>> matches = index.match(["a quick brown fox jumps over a wall"])
    >>> index.item_id(int(matches.item[0])), int(matches.matched[0])
    ('t/1', 3)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from posttrain.platform.decontam.functions import FunctionIndex
from posttrain.platform.decontam.ngrams import (
    NgramStream,
    TokenStream,
    distinct_words_per_ngram,
    ngram_stream,
    token_stream,
)
from posttrain.platform.errors import ConfigError

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

NO_ITEM = -1


@dataclass(frozen=True)
class ReferenceSet:
    """The items of one benchmark as plain text, ready to index.

    Attributes:
        benchmark: short name, e.g. ``humaneval``.
        item_ids: one id per item.
        texts: per item, its text columns joined by newlines (so n-grams may span them,
            as a HumanEval prompt runs into its solution).
        snapshot_id: the ``eval.*`` snapshot the items were read from, for lineage.
    """

    benchmark: str
    item_ids: tuple[str, ...]
    texts: tuple[str, ...]
    snapshot_id: int | None = None

    def __post_init__(self) -> None:
        if len(self.item_ids) != len(self.texts):
            raise ConfigError(
                f"benchmark {self.benchmark!r}: {len(self.item_ids)} item ids "
                f"but {len(self.texts)} texts"
            )


@dataclass(frozen=True)
class Matches:
    """Per document: the benchmark item sharing most n-grams with it, and how many.

    ``item[i]`` is :data:`NO_ITEM` and ``matched[i]`` 0 when document ``i`` shares none.
    ``item_ngrams[i]`` is the number of distinct n-grams of that item (0 without a match).
    """

    item: I64
    matched: I32
    item_ngrams: I32


def _distinct_pairs(
    first: npt.NDArray[np.integer[Any]], second: npt.NDArray[np.integer[Any]]
) -> npt.NDArray[np.bool_]:
    """Mask keeping the first of each equal ``(first, second)`` pair, after sorting by both."""
    if len(first) == 0:
        return np.zeros(0, dtype=bool)
    keep = np.ones(len(first), dtype=bool)
    keep[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
    return keep


def _prefilter_bits(num_hashes: int) -> int:
    """Bits of a bitset with about 32 slots per hash (false candidates ≈ 3 %), 2**12..2**32."""
    return min(32, max(12, int(np.ceil(np.log2(max(1, num_hashes) * 32)))))


def _slots(hashes: U64, bits: int) -> U64:
    return hashes >> np.uint64(64 - bits)


def _bitset(hashes: U64, bits: int) -> npt.NDArray[np.uint8]:
    """A bitset with the bit of each hash's top ``bits`` bits set."""
    bitset = np.zeros(1 << (bits - 3), dtype=np.uint8)
    slots = _slots(hashes, bits)
    masks = np.left_shift(np.uint8(1), (slots & np.uint64(7)).astype(np.uint8))
    np.bitwise_or.at(bitset, (slots >> np.uint64(3)).astype(np.int64), masks)
    return bitset


def _in_bitset(bitset: npt.NDArray[np.uint8], bits: int, hashes: U64) -> npt.NDArray[np.bool_]:
    """Whether each hash's bit is set: a cheap pre-filter before the binary search.

    A gather from a small bitset costs far less than ``searchsorted``, and almost every
    n-gram of training text is not in the index.
    """
    slots = _slots(hashes, bits)
    shifts = (slots & np.uint64(7)).astype(np.uint8)
    member: npt.NDArray[np.bool_] = ((bitset[slots >> np.uint64(3)] >> shifts) & 1).astype(bool)
    return member


@dataclass(frozen=True)
class NgramIndex:
    """N-gram hashes of benchmark items, searchable by whole batches of documents.

    Build with :meth:`build`; see :mod:`posttrain.platform.decontam.references` for
    reading the items from ``eval.*`` tables or files.
    """

    ngram: int
    min_ngram_words: int
    benchmarks: tuple[str, ...]
    item_ids: tuple[str, ...]
    item_benchmark: I32  # item → index into ``benchmarks``
    item_ngram_counts: I32  # item → distinct n-grams it has
    unique_hashes: U64  # sorted
    offsets: I64  # postings of unique_hashes[k] are posting_items[offsets[k]:offsets[k+1]]
    posting_items: I32
    prefilter: npt.NDArray[np.uint8]  # bitset over the top ``prefilter_bits`` bits of each hash
    prefilter_bits: int
    snapshot_ids: dict[str, int | None] = field(default_factory=dict)
    functions: FunctionIndex | None = None  # code-aware matching, when enabled

    @classmethod
    def build(
        cls,
        references: Iterable[ReferenceSet],
        *,
        ngram: int,
        min_ngram_words: int = 0,
        code_min_tokens: int | None = None,
        code_min_words: int = 0,
    ) -> NgramIndex:
        """Index every item of every reference set; items are numbered in the given order.

        Args:
            references: the benchmarks to index.
            ngram: n-gram size in tokens.
            min_ngram_words: leave out n-grams with fewer distinct words (see
                :func:`~posttrain.platform.decontam.ngrams.distinct_words_per_ngram`).
            code_min_tokens: also fingerprint the items' functions
                (:class:`~posttrain.platform.decontam.functions.FunctionIndex`) of at least
                this many code tokens; ``None``: no code-aware matching.
            code_min_words: ... and at least this many informative code tokens.
        """
        references = list(references)
        names = [ref.benchmark for ref in references]
        if len(set(names)) != len(names):
            raise ConfigError(f"benchmark names must be distinct, got {names}")
        item_ids = tuple(item for ref in references for item in ref.item_ids)
        item_benchmark = np.concatenate(
            [np.full(len(ref.item_ids), k, dtype=np.int32) for k, ref in enumerate(references)]
            or [np.empty(0, dtype=np.int32)]
        )
        texts = [text for ref in references for text in ref.texts]
        tokens = token_stream(pa.array(texts, type=pa.large_string()))
        grams = ngram_stream(tokens, ngram)
        if min_ngram_words > 0:
            informative = distinct_words_per_ngram(tokens, ngram) >= min_ngram_words
            grams = NgramStream(grams.hashes[informative], grams.doc[informative])
        order = np.lexsort((grams.doc, grams.hashes))
        hashes, items = grams.hashes[order], grams.doc[order]
        distinct = _distinct_pairs(hashes, items)
        hashes, items = hashes[distinct], items[distinct]
        unique_hashes, starts = np.unique(hashes, return_index=True)
        prefilter_bits = _prefilter_bits(len(unique_hashes))
        return cls(
            ngram=ngram,
            min_ngram_words=min_ngram_words,
            benchmarks=tuple(names),
            item_ids=item_ids,
            item_benchmark=item_benchmark,
            item_ngram_counts=np.bincount(items, minlength=len(item_ids)).astype(np.int32),
            unique_hashes=unique_hashes,
            offsets=np.append(starts, len(hashes)).astype(np.int64),
            posting_items=items.astype(np.int32),
            prefilter=_bitset(unique_hashes, prefilter_bits),
            prefilter_bits=prefilter_bits,
            snapshot_ids={ref.benchmark: ref.snapshot_id for ref in references},
            functions=(
                FunctionIndex.build(texts, min_tokens=code_min_tokens, min_words=code_min_words)
                if code_min_tokens is not None
                else None
            ),
        )

    def scheme(self) -> dict[str, Any]:
        """The settings this index was built with, as ``DecontamConfig.index_scheme`` says."""
        functions = self.functions
        return {
            "ngram": self.ngram,
            "min_ngram_words": self.min_ngram_words,
            "code_min_tokens": functions.min_tokens if functions is not None else None,
            "code_min_words": functions.min_words if functions is not None else 0,
        }

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_ngrams(self) -> int:
        return len(self.unique_hashes)

    def benchmark(self, item: int) -> str:
        """Name of the benchmark item ``item`` belongs to."""
        return self.benchmarks[int(self.item_benchmark[item])]

    def item_id(self, item: int) -> str:
        return self.item_ids[item]

    def unmatchable_items(self) -> list[str]:
        """Items with fewer tokens than the n-gram size: n-gram overlap cannot see them."""
        return [self.item_ids[k] for k in np.flatnonzero(self.item_ngram_counts == 0)]

    def match(self, texts: pa.Array | pa.ChunkedArray | Sequence[str | None]) -> Matches:
        """For every text, the item sharing most distinct n-grams (see :meth:`match_tokens`)."""
        array = (
            texts
            if isinstance(texts, pa.Array | pa.ChunkedArray)
            else pa.array(list(texts), type=pa.large_string())
        )
        return self.match_tokens(token_stream(array), len(array))

    def match_tokens(self, tokens: TokenStream, num_docs: int) -> Matches:
        """For every document of ``tokens``, the item sharing most distinct n-grams with it.

        Ties go to the item listed first. Repeated n-grams of a document count once.

        Args:
            tokens: the documents' tokens, ``tokens.doc`` in ``range(num_docs)``, ascending.
            num_docs: number of documents (some may have no tokens).
        """
        item = np.full(num_docs, NO_ITEM, dtype=np.int64)
        matched = np.zeros(num_docs, dtype=np.int32)
        item_ngrams = np.zeros(num_docs, dtype=np.int32)
        if self.num_ngrams == 0 or num_docs == 0:
            return Matches(item, matched, item_ngrams)
        grams = ngram_stream(tokens, self.ngram)
        candidate = _in_bitset(self.prefilter, self.prefilter_bits, grams.hashes)
        hashes, docs = grams.hashes[candidate], grams.doc[candidate]
        slot = np.minimum(np.searchsorted(self.unique_hashes, hashes), self.num_ngrams - 1)
        hit = self.unique_hashes[slot] == hashes
        doc_of_hit, slot_of_hit = docs[hit], slot[hit].astype(np.int64)
        order = np.lexsort((slot_of_hit, doc_of_hit))
        doc_of_hit, slot_of_hit = doc_of_hit[order], slot_of_hit[order]
        distinct = _distinct_pairs(doc_of_hit, slot_of_hit)
        pair_doc, pair_item = self._expand_postings(doc_of_hit[distinct], slot_of_hit[distinct])
        best_doc, best_item, best_count = self._best_item_per_doc(pair_doc, pair_item)
        item[best_doc] = best_item
        matched[best_doc] = best_count
        item_ngrams[best_doc] = self.item_ngram_counts[best_item]
        return Matches(item, matched, item_ngrams)

    def _expand_postings(self, doc: I64, slot: I64) -> tuple[I64, I64]:
        """One ``(doc, item)`` row per item posted under each matched n-gram."""
        starts = self.offsets[slot]
        lengths = self.offsets[slot + 1] - starts
        total = int(lengths.sum())
        # Index of every posting: a run starts[k] .. starts[k] + lengths[k] per matched n-gram.
        run_begin = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        positions = run_begin + np.arange(total, dtype=np.int64)
        return np.repeat(doc, lengths), self.posting_items[positions].astype(np.int64)

    def _best_item_per_doc(self, doc: I64, item: I64) -> tuple[I64, I64, I32]:
        if len(doc) == 0:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0, dtype=np.int32)
        keys, counts = np.unique(doc * self.num_items + item, return_counts=True)
        pair_doc, pair_item = keys // self.num_items, keys % self.num_items
        # Most matches first, then the lowest item number, within each document.
        order = np.lexsort((pair_item, -counts, pair_doc))
        pair_doc, pair_item, counts = pair_doc[order], pair_item[order], counts[order]
        first = np.ones(len(pair_doc), dtype=bool)
        first[1:] = pair_doc[1:] != pair_doc[:-1]
        return pair_doc[first], pair_item[first], counts[first].astype(np.int32)
