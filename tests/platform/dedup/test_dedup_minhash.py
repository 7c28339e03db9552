"""Exact hashes, shingles and MinHash signatures, and the stored signature format."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pyarrow as pa
import pytest

from posttrain.platform.dedup.config import DedupConfig
from posttrain.platform.dedup.exact import exact_hashes
from posttrain.platform.dedup.fingerprints import FingerprintStep
from posttrain.platform.dedup.minhash import (
    decode_signatures,
    encode_signatures,
    shingle_hashes,
    signatures,
)
from posttrain.platform.dedup.normalize import normal_form


def test_exact_hashes_are_equal_for_equal_normal_forms_and_null_without_text() -> None:
    hashes = exact_hashes(
        normal_form(pa.array(["Hello  World", "hello world", "hello, world", ""]))
    )
    first, second, third, empty = hashes.to_pylist()
    assert first == second != third
    assert len(first) == 32 and empty is None


def test_exact_hashes_of_a_slice_with_nulls_follow_each_row() -> None:
    texts = normal_form(pa.array(["skip", "b", None, "", "a", "b"])).slice(1)
    whole = exact_hashes(normal_form(pa.array(["b", "a"]))).to_pylist()
    assert exact_hashes(texts).to_pylist() == [whole[0], None, None, whole[1], whole[0]]


def _shingles(word_hashes: list[int], lengths: list[int], ngram: int) -> list[list[int]]:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat, shingle_offsets = shingle_hashes(np.array(word_hashes, dtype=np.uint64), offsets, ngram)
    return [flat[a:b].tolist() for a, b in pairwise(shingle_offsets)]


def test_shingles_cover_each_window_of_n_words_within_its_text() -> None:
    first, second = _shingles([1, 2, 3, 4, 5, 6, 7], [4, 3], ngram=3)
    [[one_two_three]], [[two_three_four]] = (
        _shingles([1, 2, 3], [3], 3),
        _shingles([2, 3, 4], [3], 3),
    )
    assert first == [one_two_three, two_three_four]  # no window crosses into the next text
    assert second == _shingles([5, 6, 7], [3], ngram=3)[0]


def test_texts_shorter_than_n_have_one_shingle_and_empty_texts_none() -> None:
    short, empty, other_short = _shingles([1, 2, 9], [2, 0, 1], ngram=5)
    assert len(short) == 1 and empty == [] and len(other_short) == 1
    assert short != other_short


def test_shingles_depend_on_word_order() -> None:
    assert _shingles([1, 2], [2], ngram=2) != _shingles([2, 1], [2], ngram=2)


def test_signature_similarity_estimates_jaccard() -> None:
    rng = np.random.default_rng(3)
    errors = []
    for shared in (100, 300, 500, 700, 900):
        base = rng.integers(0, 2**63, 1000, dtype=np.uint64)
        other = np.concatenate(
            [base[:shared], rng.integers(0, 2**63, 1000 - shared, dtype=np.uint64)]
        )
        rows = signatures(np.concatenate([base, other]), np.array([0, 1000, 2000]), 256, seed=1)
        errors.append((rows[0] == rows[1]).mean() - shared / (2000 - shared))
    assert np.abs(errors).max() < 0.08


def test_a_text_gets_the_same_fingerprint_in_any_batch(prose: dict[str, str]) -> None:
    step = FingerprintStep(DedupConfig(), "text")
    texts = list(prose.values())
    together = step.sign(pa.record_batch({"record_id": ["a", "b", "c", "d"], "text": texts}))
    alone = step.sign(pa.record_batch({"record_id": ["c"], "text": [texts[2]]}))
    assert together.slice(2, 1).equals(alone)


def test_stored_signatures_round_trip_with_nulls() -> None:
    config = DedupConfig(num_perm=16, bands=4)
    rows = np.arange(48, dtype=np.uint32).reshape(3, 16)
    stored = encode_signatures(rows, np.array([True, False, True]), config)
    assert stored.type == pa.binary() and stored.null_count == 1
    decoded, valid = decode_signatures(stored, config)
    assert valid.tolist() == [True, False, True]
    assert np.array_equal(decoded[[0, 2]], rows[[0, 2]])


def test_signatures_of_another_scheme_are_refused() -> None:
    rows = np.zeros((1, 16), dtype=np.uint32)
    stored = encode_signatures(rows, np.array([True]), DedupConfig(num_perm=16, bands=4, seed=1))
    with pytest.raises(ValueError, match="another MinHash scheme"):
        decode_signatures(stored, DedupConfig(num_perm=16, bands=4, seed=2))
    with pytest.raises(ValueError, match="bytes"):
        decode_signatures(stored, DedupConfig(num_perm=32, bands=4, seed=1))


def test_unicode_rows_of_a_mostly_ascii_batch_follow_the_unicode_rules() -> None:
    step = FingerprintStep(DedupConfig(ngram=2), "text")
    texts = ["plain ascii text here", "Ｈｅｌｌｏ  Wörld, again", "hello wörld again", ""]
    out = step.sign(pa.record_batch({"record_id": ["a", "b", "c", "d"], "text": texts}))
    hashes, signed = out["exact_hash"].to_pylist(), out["signature"].to_pylist()
    assert hashes[1] != hashes[2]  # the comma still counts for the exact hash
    assert signed[1] == signed[2]  # but not for the words
    assert hashes[3] is None and signed[3] is None
