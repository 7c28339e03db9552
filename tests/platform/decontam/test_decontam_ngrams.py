"""Normalization, tokens and n-gram hashes."""

from __future__ import annotations

import numpy as np
import pytest

from posttrain.platform.decontam.ngrams import (
    distinct_words_per_ngram,
    ngram_stream,
    normalized_tokens,
    text_ngrams,
    token_stream,
)

HUMANEVAL_LIKE = '''def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if in given list of numbers, are any two numbers closer to each other than
    given threshold.
    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)
    False
    """'''


def test_punctuation_quotes_and_whitespace_only_separate_tokens() -> None:
    assert normalized_tokens("print( 'a,b' )\n\t\tx=1") == ["print", "a", "b", "x", "1"]


def test_nfkc_and_casefold_make_compatibility_forms_equal() -> None:
    assert normalized_tokens("Ｆｕｌｌ STRASSE") == normalized_tokens("full straße")


def test_snake_and_camel_case_spell_the_same_words() -> None:
    assert normalized_tokens("hasCloseElements") == normalized_tokens("has_close_elements")


def test_reformatted_code_has_the_same_ngrams() -> None:
    reformatted = (
        HUMANEVAL_LIKE.replace("    ", "\t").replace('"""', "'''").replace(", ", ",").upper()
    )
    original, edited = text_ngrams([HUMANEVAL_LIKE, reformatted], 13).hashes.reshape(2, -1)
    assert np.array_equal(original, edited)


def test_ngrams_never_span_two_documents() -> None:
    grams = text_ngrams(["a b c", None, "d e", "f g h i"], 3)
    assert grams.doc.tolist() == [0, 3, 3]
    assert grams.hashes[0] == text_ngrams(["x a b c"], 3).hashes[1]


def test_ngram_hash_depends_on_token_order() -> None:
    forward, backward = text_ngrams(["alpha beta gamma", "gamma beta alpha"], 3).hashes
    assert forward != backward


def test_documents_shorter_than_n_have_no_ngrams() -> None:
    assert len(text_ngrams(["one two three"], 5).hashes) == 0


def test_distinct_words_ignore_digits_single_letters_and_repeats() -> None:
    tokens = token_stream(["0 1 2 a b c", "for i in range for j in range"])
    counts = distinct_words_per_ngram(tokens, 6)
    assert counts.tolist() == [0, 3, 3, 3]  # doc 2 windows hold {for, in, range}
    assert len(counts) == len(ngram_stream(tokens, 6).hashes)


def test_ngram_size_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="between 1 and 64"):
        ngram_stream(token_stream(["a"]), 65)
