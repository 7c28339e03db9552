"""A record that makes fingerprinting raise is rejected; dedup of the others goes on."""

from __future__ import annotations

import pyarrow as pa
import pytest

from posttrain.platform.dedup import DedupConfig, deduplicate
from posttrain.platform.dedup.fingerprints import FingerprintStep
from posttrain.platform.execution import InProcessExecutor

POISON = "a text the normalizer chokes on"


def test_a_record_that_makes_fingerprinting_raise_is_a_rejection_naming_its_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sign = FingerprintStep.sign

    def failing_sign(self: FingerprintStep, batch: pa.RecordBatch) -> pa.RecordBatch:
        if POISON in batch.column(self.text_column).to_pylist():
            raise MemoryError("cannot allocate the shingle buffer")
        return sign(self, batch)

    monkeypatch.setattr(FingerprintStep, "sign", failing_sign)
    texts = ["the quick brown fox jumps", POISON, "the quick brown fox jumps", "other words"]
    candidates = pa.table(
        {
            "record_id": ["a", "b", "c", "d"],
            "text": texts,
            "source_uri": ["file:///in/chats.jsonl"] * 4,
            "row_index": [1, 2, 3, 4],
        }
    )

    result = deduplicate(candidates, DedupConfig(), InProcessExecutor(), text_column="text")

    assert result.fingerprints["record_id"].to_pylist() == ["a", "c", "d"]
    assert result.kept(candidates)["record_id"].to_pylist() == ["a", "d"]
    rejected = result.rejected.select(["record_id", "reason", "row_index"]).to_pylist()
    assert rejected == [
        {"record_id": "b", "reason": "stage_error", "row_index": 2},
        {"record_id": "c", "reason": "exact_dup", "row_index": 3},
    ]
    assert result.rejected["detail"][0].as_py() == (
        "the 'dedup fingerprints' stage raised MemoryError: cannot allocate the shingle "
        "buffer (file:///in/chats.jsonl, line 2)"
    )
