"""Normalization: the exact-match normal form and the words near-dup shingles are made of."""

from __future__ import annotations

import random
from itertools import pairwise

import pyarrow as pa

from posttrain.platform.dedup._ascii import ascii_normal_form, ascii_words
from posttrain.platform.dedup.normalize import (
    _WHITESPACE_RUN,
    _unicode_normal_form,
    _unicode_words,
    normal_form,
    words,
)


def _normal(*texts: str | None) -> list[str | None]:
    normalized: list[str | None] = normal_form(pa.array(texts, pa.string())).to_pylist()
    return normalized


def test_normal_form_folds_case_whitespace_and_line_endings() -> None:
    assert _normal("  Hello\tWORLD \r\n\n  again  ") == ["hello world again"]


def test_normal_form_maps_compatibility_characters_and_drops_invisible_ones() -> None:
    # full-width letters, a ligature, a no-break space, a zero-width space, a soft hyphen
    assert _normal("Ｈｅｌｌｏ\u00a0ﬁle\u200b co\u00adop") == ["hello file coop"]


def test_normal_form_keeps_punctuation() -> None:
    assert _normal("a.b", "a b") == ["a.b", "a b"]


def test_normal_form_keeps_nulls_and_empties() -> None:
    assert _normal(None, "", " \n ") == [None, "", ""]


def test_words_drop_punctuation_and_symbols_including_typographic_ones() -> None:
    flat, offsets = words(normal_form(pa.array(["\u201cDon't\u201d \u2014 x+y=z; foo_bar()!"])))
    assert flat.to_pylist() == ["don", "t", "x", "y", "z", "foo", "bar"]
    assert offsets.tolist() == [0, 7]


def test_words_give_empty_lists_for_null_empty_and_punctuation_only_texts() -> None:
    flat, offsets = words(normal_form(pa.array([None, "", "!!! ...", "ok"], pa.string())))
    assert flat.to_pylist() == ["ok"]
    assert offsets.tolist() == [0, 0, 0, 0, 1]


def test_mixed_ascii_and_unicode_batch_keeps_row_order() -> None:
    texts = ["Plain ASCII", "Ünïcödé  Text", None, "more, ASCII", "ＦＵＬＬ width"]
    normalized = normal_form(pa.array(texts))
    assert normalized.to_pylist() == [
        "plain ascii",
        "ünïcödé text",
        None,
        "more, ascii",
        "full width",
    ]
    flat, offsets = words(normalized)
    per_text = [flat.to_pylist()[a:b] for a, b in pairwise(offsets)]
    assert per_text == [
        ["plain", "ascii"],
        ["ünïcödé", "text"],
        [],
        ["more", "ascii"],
        ["full", "width"],
    ]


def test_ascii_fast_path_matches_the_unicode_rules_on_every_ascii_character() -> None:
    rng = random.Random(7)
    alphabet = [chr(code) for code in range(128)]
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 80))) for _ in range(2000)]
    texts += ["", " ", "  a  ", "\x00", "\x1f\x1c", None]  # type: ignore[list-item]
    array = pa.array(texts, pa.string())
    fast, reference = ascii_normal_form(array), _unicode_normal_form(array)
    assert fast.to_pylist() == reference.to_pylist()
    assert ascii_words(fast).to_pylist() == _unicode_words(reference).to_pylist()


def test_normal_form_of_a_sliced_array_ignores_the_rows_outside_the_slice() -> None:
    array = pa.array(["DROPPED  ", "Kept  Row", "also   dropped"])
    assert normal_form(array.slice(1, 1)).to_pylist() == ["kept row"]
    flat, offsets = words(normal_form(array).slice(1, 1))
    assert flat.to_pylist() == ["kept", "row"] and offsets.tolist() == [0, 2]


def test_a_word_never_runs_from_one_text_into_the_next() -> None:
    # The texts are adjacent in one buffer; "ab" + "cd" must not become "abcd".
    flat, offsets = words(normal_form(pa.array(["x ab", "cd y", "z"]).slice(0, 3)))
    assert flat.to_pylist() == ["x", "ab", "cd", "y", "z"]
    assert offsets.tolist() == [0, 2, 4, 5]


def test_words_of_a_slice_are_those_of_its_own_texts() -> None:
    texts = pa.array(["skip me", "Hello,  World", None, "again"]).slice(1, 3)
    flat, offsets = words(normal_form(texts))
    assert flat.to_pylist() == ["hello", "world", "again"]
    assert offsets.tolist() == [0, 2, 2, 3]


def _reference_normal_form(texts: pa.Array) -> pa.Array:
    """The normal-form rule as plain regexes: every whitespace run matched and replaced."""
    import pyarrow.compute as pc

    result = pc.utf8_lower(pc.utf8_normalize(texts, form="NFKC"))
    result = pc.replace_substring_regex(result, pattern=r"\p{Cf}+", replacement="")
    result = pc.replace_substring_regex(result, pattern=_WHITESPACE_RUN, replacement=" ")
    return pc.utf8_trim_whitespace(result)


def _reference_words(normalized: pa.Array) -> list[list[str]]:
    import pyarrow.compute as pc

    spaced = pc.replace_substring_regex(normalized, pattern=r"[\p{P}\p{S}]+", replacement=" ")
    return [[word for word in (text or "").split(" ") if word] for text in spaced.to_pylist()]


def test_unicode_rules_match_their_plain_regex_definitions() -> None:
    """The Unicode path matches fewer runs (lone spaces, ASCII punctuation by table) and
    must still give what the plain rules give."""
    rng = random.Random(11)
    alphabet = [chr(code) for code in range(128)]
    alphabet += list("\x85\xa0\u1680\u2000\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
    alphabet += list("\u200b\u200d\ufeff\xad“”‘’—–…«»¿¡€£©™→")
    alphabet += list("éÉßİΣςЖ日本ｆｕｌｌ")
    texts = ["".join(rng.choices(alphabet, k=rng.randint(0, 60))) for _ in range(3000)]
    texts += ["", " ", "a \u00a0 b", "a\u2028b", ".—.", None]  # type: ignore[list-item]
    array = pa.array(texts, pa.string())
    forms = _unicode_normal_form(array)
    assert forms.to_pylist() == _reference_normal_form(array).to_pylist()
    assert _unicode_words(forms).to_pylist() == _reference_words(forms)
