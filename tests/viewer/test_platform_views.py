"""Row diffs with reasons, row lineage, notes on review branches, generation backends."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from viewer_data import message

from posttrain.platform.generate import (
    OpenAIGenerator,
    VibeCheck,
    generator_for,
    prompt_of,
    record_vibe_checks,
)
from posttrain.platform.notes import add_note, notes_for
from posttrain.platform.refs import resolve
from posttrain.platform.row_diff import diff_rows
from posttrain.platform.row_lineage import trace_row
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse


def _snapshot(warehouse: Warehouse, spec: str) -> int:
    return resolve(warehouse, spec).snapshot_id


def test_a_version_diff_names_dedup_and_new_source(viewer_warehouse: Warehouse) -> None:
    old = _snapshot(viewer_warehouse, "gold.sft@sft/v1")
    new = _snapshot(viewer_warehouse, "gold.sft@sft/v2")
    removed = diff_rows(viewer_warehouse, "gold.sft", old, new, kind="removed")
    assert removed.counts == {"added": 1, "removed": 1, "changed": 0}
    assert removed.rows[0].key == "ticket-00002"
    assert removed.rows[0].reason.startswith("dedup (near_dup")
    added = diff_rows(viewer_warehouse, "gold.sft", old, new, kind="added")
    assert added.rows[0].reason == "new source math-tutor"
    assert added.breakdown is not None and added.breakdown.added.by["source"] == {"math-tutor": 1}


def test_a_curation_fix_shows_as_changed_with_its_curator(viewer_warehouse: Warehouse) -> None:
    main = _snapshot(viewer_warehouse, "gold.sft")
    branch = _snapshot(viewer_warehouse, "gold.sft@review-fix")
    changed = diff_rows(viewer_warehouse, "gold.sft", main, branch, kind="changed")
    assert [c.key for c in changed.rows] == ["ticket-00003"]
    change = changed.rows[0]
    assert change.reason == "fix by ana (license)"
    assert change.old is not None and change.new is not None
    assert (change.old["license"], change.new["license"]) == ("CC-BY-4.0", "MIT")


def test_a_rows_lineage_reaches_bronze_its_source_and_versions(viewer_warehouse: Warehouse) -> None:
    row = viewer_warehouse.read("gold.sft", row_filter="record_id = 'ticket-00003'").to_pylist()[0]
    trace = trace_row(viewer_warehouse, "gold.sft", "record_id", "ticket-00003", row)
    assert trace.bronze is not None and trace.bronze["source_uri"].endswith("dev_support.jsonl")
    assert trace.source is not None and trace.source["license"] == "CC-BY-4.0"
    assert {(v["corpus"], v["version"]) for v in trace.versions} == {("sft", "v1"), ("sft", "v2")}


def test_a_note_shows_on_its_branch_only(warehouse: Warehouse) -> None:
    from curated_warehouse import build

    build(warehouse, {"r1": "alpha", "r2": "beta"})
    add_note(warehouse, "gold.sft", "review-n", "r1", "flag", "wrong", "ana")
    assert [n["text"] for n in notes_for(warehouse, "gold.sft", "review-n")["r1"]] == ["wrong"]
    assert notes_for(warehouse, "gold.sft", "main") == {}
    assert "review-n" in warehouse.table("gold.sft").metadata.refs


def test_prompt_of_splits_before_the_last_answer() -> None:
    row = {
        "messages": [
            message("user", "q1"),
            message("assistant", "a1"),
            message("user", "q2"),
            message("assistant", "a2"),
        ]
    }
    prompt, stored = prompt_of(row)
    assert [m["content"] for m in prompt] == ["q1", "a1", "q2"] and stored == "a2"
    dpo = {"prompt": [message("user", "q")], "chosen": [message("assistant", "yes")]}
    assert prompt_of(dpo) == ([message("user", "q")], "yes")


class _Completions(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Completions.seen.append({"path": self.path, **body})
        answer = json.dumps({"choices": [{"message": {"content": "pong"}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Completions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def test_an_openai_compatible_endpoint_answers_and_is_saved_as_a_vibe_check(
    endpoint: str, warehouse: Warehouse
) -> None:
    generator = generator_for(f"openai:{endpoint}#tiny")
    assert isinstance(generator, OpenAIGenerator)
    answer = generator.generate([message("user", "ping")], 8)
    assert answer == "pong"
    assert _Completions.seen[-1]["path"] == "/v1/chat/completions"
    assert _Completions.seen[-1]["model"] == "tiny"
    record_vibe_checks(
        warehouse,
        [
            VibeCheck(
                "s1", [message("user", "ping")], answer, generator.checkpoint, "openai", 0.1, "ana"
            )
        ],
    )
    saved = warehouse.read(TableName.LINEAGE_VIBE_CHECKS).to_pylist()
    assert saved[0]["checkpoint"] == f"openai:{endpoint}#tiny" and saved[0]["answer"] == "pong"
