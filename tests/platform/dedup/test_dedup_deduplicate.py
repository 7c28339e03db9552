"""deduplicate(): exact and near duplicates, keeper rule, published records, options."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from posttrain.platform.dedup import DedupConfig, PublishedIndex, deduplicate
from posttrain.platform.errors import ConfigError, InputFormatError
from posttrain.platform.execution import InProcessExecutor
from posttrain.platform.messages import TextView
from posttrain.platform.progress import ProgressUpdate
from posttrain.platform.schemas import SILVER_REJECTIONS

TableOf = Callable[[dict[str, str]], pa.Table]  # fixtures of conftest.py
ConversationsOf = Callable[[dict[str, tuple[str, str]]], pa.Table]


def _run(table: pa.Table, config: DedupConfig | None = None) -> pa.Table:
    column = "messages" if "messages" in table.column_names else "text"
    result = deduplicate(table, config or DedupConfig(), InProcessExecutor(), text_column=column)
    return result.assignments


def _by_id(assignments: pa.Table) -> dict[str, dict[str, object]]:
    return {row["record_id"]: row for row in assignments.to_pylist()}


def _typos(text: str) -> str:
    words = text.split(" ")
    for index in range(3, len(words), 40):
        words[index] = words[index][::-1]
    return " ".join(words)


def _swap_paragraphs(text: str) -> str:
    paragraphs = text.split("\n\n")
    paragraphs[0], paragraphs[-1] = paragraphs[-1], paragraphs[0]
    return "\n\n".join(paragraphs)


def test_exact_duplicates_keep_the_smallest_record_id(
    table_of: TableOf, prose: dict[str, str]
) -> None:
    text = prose["popen"]
    rows = _by_id(_run(table_of({"r2": text, "r1": "  " + text.upper(), "r3": text})))
    assert rows["r1"]["keep"] and not rows["r2"]["keep"] and not rows["r3"]["keep"]
    assert rows["r2"]["reason"] == rows["r3"]["reason"] == "exact_dup"
    assert rows["r2"]["matched_id"] == "r1" and rows["r2"]["similarity"] == 1.0
    assert {row["cluster_id"] for row in rows.values()} == {"r1"}


@pytest.mark.parametrize(
    "edit",
    [
        _typos,
        _swap_paragraphs,
        lambda text: text + "\n\nSent from my iPhone",
        lambda text: text[: int(len(text) * 0.9)],
        lambda text: text.replace("\n", " ").replace(". ", ".\n").upper(),
        lambda text: text.replace('"', "\u201c").replace(" ", "\u00a0", 20),
    ],
    ids=["typos", "reordered", "boilerplate", "truncated", "whitespace-case", "typography"],
)
def test_near_duplicates_from_everyday_edits_are_found(
    table_of: TableOf, prose: dict[str, str], edit: object
) -> None:
    original = prose["json_dumps"]
    edited = edit(original)  # type: ignore[operator]
    rows = _by_id(_run(table_of({"a": original, "b": edited, "c": prose["popen"]})))
    assert rows["a"]["keep"] and rows["c"]["keep"]
    assert not rows["b"]["keep"] and rows["b"]["matched_id"] == "a"
    assert rows["b"]["reason"] in {"near_dup", "exact_dup"}
    assert rows["b"]["similarity"] >= 0.7  # type: ignore[operator]


def test_documents_on_the_same_topic_are_not_duplicates(
    table_of: TableOf, prose: dict[str, str]
) -> None:
    assignments = _run(table_of({"dumps": prose["json_dumps"], "loads": prose["json_loads"]}))
    assert assignments["keep"].to_pylist() == [True, True]


def test_near_duplicate_rejection_explains_the_match(
    table_of: TableOf, prose: dict[str, str]
) -> None:
    original = prose["json_dumps"]
    result = deduplicate(
        table_of({"a": original, "b": _typos(original)}),
        DedupConfig(),
        InProcessExecutor(),
        text_column="text",
    )
    [rejection] = result.rejected.to_pylist()
    assert rejection["reason"] == "near_dup" and rejection["kept_record_id"] == "a"
    assert 0.7 <= rejection["similarity"] < 1.0
    assert "near duplicate of a" in rejection["detail"] and "5-grams" in rejection["detail"]


def test_rejections_have_the_silver_schema_and_provenance(
    conversations_of: ConversationsOf,
) -> None:
    table = conversations_of({"x": ("Say hi", "Hi there!"), "y": ("say  HI", "hi there!")})
    result = deduplicate(table, DedupConfig(), InProcessExecutor())
    assert result.rejected.schema == SILVER_REJECTIONS
    [row] = result.rejected.to_pylist()
    assert (row["record_id"], row["source"], row["batch_id"]) == ("y", "unit-test", "batch-1")


def test_keeper_does_not_depend_on_row_order(table_of: TableOf, prose: dict[str, str]) -> None:
    texts = {
        f"id-{i:02d}": prose[name] + (" extra" * i)
        for i, name in enumerate(
            ["popen", "json_dumps", "popen", "json_dumps", "popen", "json_loads"]
        )
    }
    table = table_of(texts)
    shuffled = table.take(np.random.default_rng(5).permutation(table.num_rows))
    assert _run(table).equals(_run(shuffled))


def test_empty_texts_are_kept_and_never_duplicates(table_of: TableOf) -> None:
    result = deduplicate(
        table_of({"a": "", "b": "  ", "c": "!!!"}),
        DedupConfig(),
        InProcessExecutor(),
        text_column="text",
    )
    assert result.assignments["keep"].to_pylist() == [True, True, True]
    assert result.stats.without_text == 2


def test_text_view_chooses_the_turns_compared(
    conversations_of: ConversationsOf, prose: dict[str, str]
) -> None:
    prompt = prose["popen"]
    table = conversations_of(
        {"a": (prompt, "Use subprocess.run."), "b": (prompt, prose["json_loads"])}
    )
    by_view = {
        view: _run(table, DedupConfig(text_view=view))["keep"].to_pylist() for view in TextView
    }
    assert by_view[TextView.PROMPT] == [True, False]
    assert by_view[TextView.RESPONSE] == [True, True]
    assert by_view[TextView.ALL] == [True, True]


def test_drop_whole_cluster_rejects_every_member(table_of: TableOf, prose: dict[str, str]) -> None:
    text = prose["popen"]
    config = DedupConfig(drop_whole_cluster=True)
    result = deduplicate(
        table_of({"a": text, "b": _typos(text), "c": prose["json_dumps"]}),
        config,
        InProcessExecutor(),
        text_column="text",
    )
    assert result.assignments["keep"].to_pylist() == [False, False, True]
    rejected = {row["record_id"]: row for row in result.rejected.to_pylist()}
    assert rejected["a"]["kept_record_id"] is None and rejected["b"]["kept_record_id"] is None
    assert rejected["a"]["detail"].startswith("would-be keeper of a cluster of 2, dropped whole")
    assert "would-be keeper a (cluster dropped whole)" in rejected["b"]["detail"]
    assert rejected["a"]["reason"] == rejected["b"]["reason"] == "near_dup"


def _published(table: pa.Table, config: DedupConfig) -> PublishedIndex:
    first = deduplicate(table, config, InProcessExecutor(), text_column="text")
    return PublishedIndex.from_table(first.kept_fingerprints(), config)


def test_new_records_are_deduplicated_against_published_ones(
    table_of: TableOf, prose: dict[str, str]
) -> None:
    config = DedupConfig()
    published = _published(
        table_of({"zz-old": prose["popen"], "zz-other": prose["json_loads"]}), config
    )
    # "aa-new" sorts first, yet the published record wins.
    new = table_of(
        {
            "aa-new": _typos(prose["popen"]),
            "ab-copy": prose["json_loads"],
            "ac-fresh": prose["json_dumps"],
        }
    )
    result = deduplicate(new, config, InProcessExecutor(), published, text_column="text")
    rows = _by_id(result.assignments)
    assert rows["aa-new"]["matched_id"] == "zz-old" and rows["aa-new"]["reason"] == "near_dup"
    assert rows["ab-copy"]["matched_id"] == "zz-other" and rows["ab-copy"]["reason"] == "exact_dup"
    assert rows["ac-fresh"]["keep"]
    assert result.stats.matched_published == 2
    assert "(published)" in result.rejected["detail"][0].as_py()


def test_drop_whole_cluster_keeps_the_published_record_as_match(
    table_of: TableOf, prose: dict[str, str]
) -> None:
    config = DedupConfig(drop_whole_cluster=True)
    published = _published(table_of({"zz-old": prose["popen"]}), config)
    result = deduplicate(
        table_of({"aa": prose["popen"]}), config, InProcessExecutor(), published, text_column="text"
    )
    assert result.rejected["kept_record_id"].to_pylist() == ["zz-old"]


def test_published_duplicates_of_each_other_are_left_alone(
    table_of: TableOf, prose: dict[str, str]
) -> None:
    config = DedupConfig()
    fingerprints = deduplicate(
        table_of({"p1": prose["popen"], "p2": prose["json_dumps"]}),
        config,
        InProcessExecutor(),
        text_column="text",
    ).fingerprints
    both = pa.concat_tables(
        [fingerprints, fingerprints.set_column(0, "record_id", pa.array(["p3", "p4"]))]
    )
    index = PublishedIndex.from_table(both, config)
    result = deduplicate(
        table_of({"n1": prose["json_loads"]}),
        config,
        InProcessExecutor(),
        index,
        text_column="text",
    )
    assert result.assignments["keep"].to_pylist() == [True]
    assert result.stats.candidate_pairs == 0


def test_published_signatures_of_other_settings_are_refused(
    table_of: TableOf, prose: dict[str, str]
) -> None:
    fingerprints = deduplicate(
        table_of({"p": prose["popen"]}),
        DedupConfig(ngram=3),
        InProcessExecutor(),
        text_column="text",
    ).fingerprints
    with pytest.raises(ConfigError, match="another MinHash scheme"):
        PublishedIndex.from_table(fingerprints, DedupConfig(ngram=5))


def test_kept_rows_carry_their_hash_and_signature(table_of: TableOf, prose: dict[str, str]) -> None:
    table = table_of({"b": prose["popen"], "a": prose["popen"], "c": ""})
    result = deduplicate(table, DedupConfig(), InProcessExecutor(), text_column="text")
    kept = result.kept(table)
    assert kept["record_id"].to_pylist() == ["a", "c"]
    assert kept["exact_hash"][0].is_valid and kept["minhash"][0].is_valid
    assert not kept["exact_hash"][1].is_valid and not kept["minhash"][1].is_valid


def test_repeated_record_ids_are_refused(table_of: TableOf) -> None:
    table = pa.table({"record_id": ["a", "a"], "text": ["x", "y"]})
    with pytest.raises(InputFormatError, match="unique record_id"):
        _run(table)


def test_stats_count_what_was_decided(table_of: TableOf, prose: dict[str, str]) -> None:
    text = prose["popen"]
    result = deduplicate(
        table_of({"a": text, "b": text, "c": _typos(text), "d": prose["json_dumps"]}),
        DedupConfig(),
        InProcessExecutor(),
        text_column="text",
    )
    stats = result.stats
    assert (stats.rows, stats.kept, stats.exact_duplicates, stats.near_duplicates) == (4, 2, 1, 1)
    assert stats.clusters == 1 and stats.verified_pairs >= 1
    assert stats.as_metadata()["dedup_ratio"] == 0.5


def test_config_refuses_bands_that_do_not_divide_the_signature() -> None:
    with pytest.raises(ValueError, match="must divide num_perm"):
        DedupConfig(num_perm=128, bands=30)


class _Recorder:
    def __init__(self) -> None:
        self.finished: dict[str, ProgressUpdate] = {}

    def update(self, progress: ProgressUpdate) -> None:
        pass

    def finish(self, progress: ProgressUpdate) -> None:
        self.finished[progress.stage] = progress


def test_long_stages_report_rows_done(table_of: TableOf, prose: dict[str, str]) -> None:
    recorder = _Recorder()
    deduplicate(
        table_of(prose),
        DedupConfig(),
        InProcessExecutor(recorder),
        text_column="text",
        batch_rows=2,
    )
    fingerprints, bands = (
        recorder.finished["dedup: fingerprints"],
        recorder.finished["dedup: LSH bands"],
    )
    assert fingerprints.rows_done == fingerprints.rows_total == len(prose)
    assert bands.rows_done == bands.rows_total == len(prose) * DedupConfig().bands


def test_no_candidates_give_empty_results(table_of: TableOf, prose: dict[str, str]) -> None:
    config = DedupConfig()
    published = _published(table_of({"p": prose["popen"]}), config)
    for index in (None, published):
        result = deduplicate(table_of({}), config, InProcessExecutor(), index, text_column="text")
        assert result.assignments.num_rows == result.rejected.num_rows == 0
        assert result.fingerprints.num_rows == 0 and result.stats.rows == 0
