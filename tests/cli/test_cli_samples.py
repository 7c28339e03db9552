"""``posttrain dedup`` and ``posttrain decontam`` work on the shipped samples: their planted
bad lines are reported (file, line, reason) and skipped, not fatal."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from posttrain.cli import app
from posttrain.platform.table_files import read_records

REPO = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((REPO / "data" / "samples" / "planted.json").read_text())
MANIFEST_RECORDS = {s["file"]: s["records"] for s in MANIFEST["sources"]}
JSONL_SAMPLES = sorted(s["file"] for s in MANIFEST["sources"] if s["file"].endswith(".jsonl"))
runner = CliRunner()


def planted(file: str, kind: str, **match: str) -> set[int]:
    return {
        item["line"]
        for item in MANIFEST["items"]
        if item["file"] == file
        and item["kind"] == kind
        and all(item.get(k) == v for k, v in match.items())
    }


@pytest.mark.parametrize("sample", JSONL_SAMPLES)
def test_the_skipped_lines_of_a_sample_are_planted_malformed_ones(sample: str) -> None:
    # A record without the compared key is kept as a row without text, not skipped.
    skipped = {bad.line for bad in read_records(REPO / sample).bad_lines}
    assert skipped and skipped <= planted(sample, "malformed", expected_reason="malformed")


@pytest.mark.parametrize("sample", JSONL_SAMPLES)
def test_dedup_runs_on_a_sample_and_lists_its_bad_lines(sample: str, tmp_path: Path) -> None:
    out = tmp_path / "dedup.parquet"
    result = runner.invoke(app, ["dedup", str(REPO / sample), "--out", str(out)])
    assert result.exit_code == 0, result.output
    skipped = read_records(REPO / sample).bad_lines
    summary = " ".join(result.output.split())
    assert f"skipped {len(skipped)} bad line(s) of {REPO / sample}" in summary
    assert f"line {skipped[0].line}: " in summary
    rows = pq.read_table(out)
    assert rows.num_rows + len(skipped) == MANIFEST_RECORDS[sample]
    assert rows.column("reason").null_count < rows.num_rows  # it found the planted copies


@pytest.mark.parametrize("sample", JSONL_SAMPLES)
def test_decontam_runs_on_a_sample_and_finds_its_planted_items(sample: str, tmp_path: Path) -> None:
    out = tmp_path / "hits.jsonl"
    args = ["decontam", str(REPO / sample), "--against", "humaneval", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert re.search(r"skipped \d+ bad line", result.output)
    hits = [json.loads(line) for line in out.read_text().splitlines()]
    assert {hit["input_row"] for hit in hits} == planted(sample, "contaminated")
