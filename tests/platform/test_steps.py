"""The stage contract and its driver: chaining, counters, order, and the per-record guard."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa
import pytest

from posttrain.platform.errors import RecordError
from posttrain.platform.execution import InProcessExecutor, RayExecutor
from posttrain.platform.schemas import SILVER_REJECTIONS, RejectionReason
from posttrain.platform.steps import (
    STAGE_ERRORS,
    Chain,
    StepResult,
    as_table,
    empty_rejections,
    guarded,
    run_stages,
)


def records(texts: list[str]) -> pa.Table:
    return pa.table(
        {
            "record_id": [f"r{i}" for i in range(len(texts))],
            "text": texts,
            "source": ["chats"] * len(texts),
            "source_uri": ["file:///data/chats.jsonl"] * len(texts),
            "row_index": list(range(1, len(texts) + 1)),
        }
    )


@dataclass(frozen=True)
class Decode:
    """Parses ``text`` as JSON (deep nesting raises RecursionError) and counts rows."""

    name: str = "decode"

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        table = as_table(batch)
        sizes = [len(json.dumps(json.loads(text))) for text in table["text"].to_pylist()]
        return StepResult(
            kept=table.append_column("size", pa.array(sizes, pa.int64())),
            rejected=empty_rejections(),
            counters={"decoded": table.num_rows},
        )


@dataclass(frozen=True)
class Explode:
    """Raises ``error`` for any batch holding the text ``trigger``."""

    trigger: str
    error: BaseException
    name: str = "explode"

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
        table = as_table(batch)
        if self.trigger in table["text"].to_pylist():
            raise self.error
        return StepResult(kept=table, rejected=empty_rejections(), counters={"seen": len(table)})


DEEP = "[" * 100_000 + "]" * 100_000


def test_a_record_that_makes_a_stage_raise_becomes_a_rejection_and_the_rest_go_on() -> None:
    texts = ['{"a": 1}', "[1, 2]", DEEP, '"ok"', "3"]
    result = run_stages(Decode(), records(texts), InProcessExecutor(), batch_rows=5)
    assert result.kept["record_id"].to_pylist() == ["r0", "r1", "r3", "r4"]
    [rejection] = result.rejected.to_pylist()
    assert rejection["record_id"] == "r2"
    assert rejection["reason"] == RejectionReason.STAGE_ERROR
    assert rejection["detail"].startswith("the 'decode' stage raised RecursionError: ")
    assert rejection["detail"].endswith("(file:///data/chats.jsonl, line 3)")
    assert (rejection["source_uri"], rejection["row_index"]) == ("file:///data/chats.jsonl", 3)
    assert result.counters == {"decoded": 4, STAGE_ERRORS: 1}


def test_every_bad_row_of_a_batch_is_isolated_whatever_the_batch_size() -> None:
    texts = [DEEP if i in (0, 7, 8, 19) else str(i) for i in range(20)]
    for batch_rows in (1, 3, 20):
        result = run_stages(Decode(), records(texts), InProcessExecutor(), batch_rows=batch_rows)
        assert result.rejected["row_index"].to_pylist() == [1, 8, 9, 20]
        assert result.kept["text"].to_pylist() == [t for t in texts if t != DEEP]


def test_a_record_error_raised_by_a_stage_keeps_its_reason() -> None:
    stage = Explode("bad", RecordError(RejectionReason.MALFORMED, "not a chat"))
    result = guarded(stage, records(["good", "bad"]))
    assert result.rejected.select(["record_id", "reason", "detail"]).to_pylist() == [
        {"record_id": "r1", "reason": "malformed", "detail": "not a chat"}
    ]


def test_long_error_messages_are_truncated_in_the_detail() -> None:
    result = guarded(Explode("bad", ValueError("x" * 10_000)), records(["bad"]))
    assert len(result.rejected["detail"][0].as_py()) < 500


def test_a_stage_that_fails_without_any_record_raises_instead_of_rejecting_all() -> None:
    @dataclass(frozen=True)
    class Broken:
        name: str = "broken"

        def __call__(self, batch: pa.RecordBatch | pa.Table) -> StepResult:
            raise KeyError("missing column 'messages'")

    with pytest.raises(KeyError, match="messages"):
        run_stages(Broken(), records(["a", "b"]), InProcessExecutor())


def test_keyboard_interrupt_is_never_turned_into_a_rejection() -> None:
    with pytest.raises(KeyboardInterrupt):
        guarded(Explode("bad", KeyboardInterrupt()), records(["good", "bad"]))


def test_a_chain_passes_only_kept_rows_on_and_sums_counters_over_batches() -> None:
    chain = Chain((Explode("x", RecordError("empty", "x")), Explode("y", ValueError("y"))))
    result = run_stages(
        chain, records(["a", "x", "b", "y", "c"]), InProcessExecutor(), batch_rows=2
    )
    assert result.kept["text"].to_pylist() == ["a", "b", "c"]
    assert result.rejected["reason"].to_pylist() == ["empty", "stage_error"]
    assert result.counters == {"seen": 4 + 3, STAGE_ERRORS: 1}
    assert result.rejected.schema == SILVER_REJECTIONS


def test_no_input_gives_empty_tables_of_the_declared_schema() -> None:
    schema = pa.schema([("record_id", pa.string())])
    result = run_stages(Decode(), iter([]), InProcessExecutor(), kept_schema=schema)
    assert result.kept.schema == schema and result.kept.num_rows == 0
    assert result.rejected.num_rows == 0 and result.counters == {}


@pytest.mark.slow
def test_the_guard_runs_on_ray_workers_with_the_in_process_result(ray_runtime: None) -> None:
    import sys

    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests
    texts = [DEEP if i % 5 == 2 else str(i) for i in range(12)]
    local = run_stages(Decode(), records(texts), InProcessExecutor(), batch_rows=4)
    remote = run_stages(Decode(), records(texts), RayExecutor(), batch_rows=4)
    assert remote == local
    assert local.rejected["row_index"].to_pylist() == [3, 8]
