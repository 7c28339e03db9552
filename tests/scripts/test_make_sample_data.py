"""The sample data: generated deterministically, as the brief asks, and planted as listed."""

from __future__ import annotations

import filecmp
import json
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from posttrain.platform.ingest.bronze import ingest
from posttrain.platform.ingest.sources import load_sources
from posttrain.platform.messages import conversation_text
from posttrain.platform.silver.parse import ParseStep
from posttrain.platform.silver.pipeline import chat_rows
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "make_sample_data.py"
MANIFEST = json.loads((REPO / "data" / "samples" / "planted.json").read_text())
OUTPUTS = [
    "data/README.md",
    "data/sources.yaml",
    "data/samples/planted.json",
    *(s["file"] for s in MANIFEST["sources"]),
    "data/samples/preferences/planted.json",
    *(
        f"data/samples/preferences/{name}"
        for name in json.loads((REPO / "data/samples/preferences/planted.json").read_text())
    ),
]


def generate(root: Path) -> Path:
    subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(root)], check=True, capture_output=True
    )
    return root


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("fresh"))


def differing(a: Path, b: Path) -> list[str]:
    return [name for name in OUTPUTS if not filecmp.cmp(a / name, b / name, shallow=False)]


def test_generation_is_deterministic(fresh: Path, tmp_path: Path) -> None:
    assert differing(fresh, generate(tmp_path)) == []


def test_committed_samples_are_what_the_script_makes(fresh: Path) -> None:
    made_with = MANIFEST["generator"]["python"]
    if made_with != platform.python_version():
        pytest.skip(f"samples were made with Python {made_with}; docstrings differ across versions")
    assert differing(REPO, fresh) == []


def test_samples_meet_the_brief() -> None:
    sources = MANIFEST["sources"]
    assert sum(s["records"] for s in sources) >= 2000
    assert len(sources) >= 3
    assert {s["format"] for s in sources} == {"openai", "sharegpt", "alpaca", "prompt_completion"}
    assert any(s["file"].endswith(".parquet") for s in sources)
    items = MANIFEST["items"]
    kinds = {item["kind"] for item in items}
    assert kinds >= {
        "exact_dup",
        "near_dup",
        "contaminated",
        "malformed",
        "pii",
        "secret",
        "too_long",
        "too_short",
    }
    variants = {i["variant"] for i in items if i["kind"] == "exact_dup"}
    assert variants >= {"identical", "whitespace", "case", "cross_source"}
    assert {i["edit"] for i in items if i["kind"] == "near_dup"} == {
        "typos",
        "reordered",
        "boilerplate",
        "truncated",
    }
    assert all(0.8 <= i["jaccard"] < 1 for i in items if i["kind"] == "near_dup")
    defects = {i["defect"] for i in items if i["kind"] == "malformed"}
    assert defects >= {
        "undecodable_json",
        "not_an_object",
        "missing_key",
        "wrong_role_order",
        "empty_content",
        "tool_misuse",
    }


@pytest.fixture(scope="module")
def parsed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every committed sample ingested and parsed: record id → messages, or the reject detail."""
    warehouse = Warehouse(WarehouseSettings.local(tmp_path_factory.mktemp("home")))
    ingest(warehouse, load_sources(REPO / "data" / "sources.yaml", base_dir=REPO))
    result = ParseStep()(chat_rows(warehouse.read("bronze.records")))
    out: dict[str, Any] = dict(
        zip(result.kept["record_id"].to_pylist(), result.kept["messages"].to_pylist(), strict=True)
    )
    out.update(
        zip(
            result.rejected["record_id"].to_pylist(),
            result.rejected["detail"].to_pylist(),
            strict=True,
        )
    )
    return out


def normalized(messages: list[Any]) -> str:
    return " ".join(conversation_text(messages).lower().split())


def shingles(messages: list[Any]) -> set[str]:
    words = normalized(messages).split()
    return {" ".join(words[i : i + 5]) for i in range(max(1, len(words) - 4))}


def test_every_planted_record_id_is_in_bronze(parsed: dict[str, Any]) -> None:
    ids = {i["record_id"] for i in MANIFEST["items"]} | {
        i["original"]["record_id"] for i in MANIFEST["items"] if "original" in i
    }
    assert ids <= parsed.keys()


def test_exactly_the_planted_malformed_rows_fail_to_parse(parsed: dict[str, Any]) -> None:
    expected = {
        i["record_id"] for i in MANIFEST["items"] if i.get("expected_reason") == "malformed"
    }
    refused = {record_id for record_id, value in parsed.items() if isinstance(value, str)}
    assert refused == expected


def test_exact_duplicates_match_their_original_after_normalizing(parsed: dict[str, Any]) -> None:
    pairs = [
        (parsed[i["record_id"]], parsed[i["original"]["record_id"]])
        for i in MANIFEST["items"]
        if i["kind"] == "exact_dup"
    ]
    assert all(normalized(copy) == normalized(original) for copy, original in pairs)


def test_near_duplicates_have_the_recorded_similarity(parsed: dict[str, Any]) -> None:
    for item in (i for i in MANIFEST["items"] if i["kind"] == "near_dup"):
        copy, original = (
            shingles(parsed[item["record_id"]]),
            shingles(parsed[item["original"]["record_id"]]),
        )
        assert len(copy & original) / len(copy | original) == pytest.approx(
            item["jaccard"], abs=1e-3
        )


CREDENTIAL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+|\b(?:sk-|ghp_|AKIA|hf_)[A-Za-z0-9]{12,}")


def test_personal_data_appears_only_where_planted(parsed: dict[str, Any]) -> None:
    planted = {i["record_id"]: i for i in MANIFEST["items"] if i["kind"] in ("pii", "secret")}
    for record_id, value in parsed.items():
        text = value if isinstance(value, str) else conversation_text(value)
        if record_id in planted:
            assert all(v in text for v in planted[record_id]["values"])
        else:
            assert not CREDENTIAL.search(text), record_id
