"""`posttrain serve` over real HTTP on 127.0.0.1 (one service subprocess for the module)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from capture_server import CaptureHome, Server, call, make_home, wait_for
from typer.testing import CliRunner

from posttrain.cli import app
from posttrain.platform.access import CaptureRules, WorkspaceStore, query_as
from posttrain.platform.capture.events import capture_record_id
from posttrain.platform.query import run_query
from posttrain.platform.schemas import TableName
from posttrain.platform.warehouse import Warehouse, WarehouseSettings
from posttrain.resources.workspace import WorkspaceReaderResource

runner = CliRunner()
MAX_BODY = 64 * 1024


def session(event_id: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "type": "session",
        "id": event_id,
        "messages": [
            {"role": "user", "content": text},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
            {"role": "assistant", "content": "it is 42"},
        ],
        **extra,
    }


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> CaptureHome:
    home = make_home(tmp_path_factory.mktemp("serve") / "home", max_body_bytes=MAX_BODY)
    store = WorkspaceStore.open(home.path)
    with store._editing() as data:  # capture rules for alpha, as an admin would write them
        data["workspaces"]["alpha"]["rules"] = CaptureRules(
            drop_fields=("metadata.secret",),
            redact=("email",),  # type: ignore[arg-type]
            redact_patterns=(r"ACME-\d{4}",),
            refuse_sources=("legacy-bot",),
        ).model_dump(mode="json")
    return home


@pytest.fixture(scope="module")
def server(home: CaptureHome) -> Iterator[Server]:
    service = Server(home.path).start()
    try:
        yield service
    finally:
        service.kill()


def post(server: Server, events: list[Any], token: str) -> tuple[int, Any, dict[str, str]]:
    return call(server.url + "/v1/events", "POST", {"events": events}, token=token)


def bronze_rows(home: CaptureHome, workspace: str) -> list[dict[str, Any]]:
    warehouse = Warehouse(WarehouseSettings.local(home.path))
    if not warehouse.exists(TableName.BRONZE_RECORDS):
        return []
    rows = run_query(warehouse, "select * from bronze.records", workspace=workspace)
    return rows.to_pylist()


def landed(home: CaptureHome, workspace: str, record_id: str) -> list[dict[str, Any]]:
    return [row for row in bronze_rows(home, workspace) if row["record_id"] == record_id]


def test_a_batch_is_answered_event_by_event(server: Server, home: CaptureHome) -> None:
    events = [session("batch-1"), {"type": "session", "id": "batch-2"}, "not an object"]
    status, answer, _ = post(server, events, home.token("alpha"))
    assert status == 200
    assert [ack["status"] for ack in answer["acks"]] == ["accepted", "refused", "refused"]
    assert "messages" in answer["acks"][1]["reason"]
    assert answer["acks"][0]["record_id"] == capture_record_id("alpha", "session", "batch-1")
    assert (answer["accepted"], answer["refused"]) == (1, 2)


def test_the_api_is_documented_at_docs(server: Server) -> None:
    assert call(server.url + "/docs")[0] == 200
    schema = call(server.url + "/openapi.json")[1]
    assert {"/v1/events", "/v1/sessions", "/v1/outcomes", "/v1/query"} <= set(schema["paths"])
    assert {"SessionEvent", "TurnEvent", "OutcomeEvent"} <= set(schema["components"]["schemas"])


def test_a_retried_event_is_stored_once(server: Server, home: CaptureHome) -> None:
    first = post(server, [session("retry-1")], home.token("alpha"))[1]
    again = post(server, [session("retry-1"), session("retry-1")], home.token("alpha"))[1]
    assert first["acks"][0]["status"] == "accepted"
    assert [ack["status"] for ack in again["acks"]] == ["duplicate", "duplicate"]
    record_id = first["acks"][0]["record_id"]
    wait_for(lambda: landed(home, "alpha", record_id))
    post(server, [session("retry-1")], home.token("alpha"))  # after the flush too
    time.sleep(1.2)
    assert len(landed(home, "alpha", record_id)) == 1


def test_a_request_without_a_valid_token_is_401_with_the_reason(
    server: Server, home: CaptureHome
) -> None:
    assert post(server, [session("x")], "")[0] == 401
    status, answer, headers = post(server, [session("x")], "pt_0123456789ab_" + "A" * 43)
    assert status == 401 and "unknown API token" in answer["error"]
    assert headers["www-authenticate"] == "Bearer"
    assert "malformed" in post(server, [session("x")], "hunter2")[1]["error"]


def test_a_role_that_may_not_is_403_with_the_reason(server: Server, home: CaptureHome) -> None:
    status, answer, _ = post(server, [session("x")], home.token("alpha", "reader"))
    assert status == 403 and "role reader, which may not write" in answer["error"]
    status, answer, _ = call(
        server.url + "/v1/query", "POST", {"sql": "select 1"}, token=home.token("alpha")
    )
    assert status == 403 and "may not read" in answer["error"]


def test_a_revoked_token_is_refused_by_the_running_service(
    server: Server, home: CaptureHome
) -> None:
    store = WorkspaceStore.open(home.path)
    token, record = store.issue_token("beta", "writer")  # type: ignore[arg-type]
    assert post(server, [session("rv-1")], token)[0] == 200
    store.revoke(record.id)
    status, answer, _ = post(server, [session("rv-2")], token)
    assert status == 401 and "revoked" in answer["error"]


def test_malformed_json_wrong_shape_and_oversize_bodies_get_clear_4xx(
    server: Server, home: CaptureHome
) -> None:
    url, token = server.url + "/v1/events", home.token("alpha")
    status, answer, _ = call(url, "POST", raw=b'{"events": [', token=token)
    assert status == 400 and "malformed JSON" in answer["error"]
    status, answer, _ = call(url, "POST", raw=b"\xff\xfe", token=token)
    assert status == 400
    status, answer, _ = call(url, "POST", {"sessions": []}, token=token)
    assert status == 422 and '"events"' in answer["error"]
    big = [session(f"big-{i}", "x" * 2000) for i in range(40)]
    status, answer, _ = post(server, big, token)
    assert status == 413 and "limit" in answer["error"]


def test_capture_rules_drop_redact_and_refuse_before_the_write(
    server: Server, home: CaptureHome
) -> None:
    events = [
        session(
            "rules-1",
            "mail bob@corp.com about ACME-1234",
            metadata={"secret": "s3cr3t", "team": "t"},
        ),
        session("rules-2", source="legacy-bot"),
    ]
    answer = post(server, events, home.token("alpha"))[1]
    assert answer["acks"][0]["status"] == "accepted"
    assert answer["acks"][1]["status"] == "refused"
    assert "legacy-bot" in answer["acks"][1]["reason"]
    (row,) = wait_for(lambda: landed(home, "alpha", answer["acks"][0]["record_id"]))
    payload = json.loads(row["payload"])
    assert payload["messages"][0]["content"] == "mail <EMAIL> about <REDACTED>"
    assert payload["metadata"] == {"team": "t"}
    assert row["source"] == "alpha/capture" and row["workspace"] == "alpha"
    wal = (home.path / "capture" / "wal").glob("*.wal")
    assert not any(b"s3cr3t" in path.read_bytes() for path in wal)


def test_turns_and_late_outcomes_land_in_bronze_and_wake_the_outcomes_sensor(
    server: Server, home: CaptureHome
) -> None:
    import dagster as dg

    from posttrain.jobs.capture import capture_sensor
    from posttrain.jobs.outcomes import outcomes_sensor
    from posttrain.resources import WarehouseResource

    token = home.token("beta")
    turn = {
        "type": "turn",
        "id": "t-1",
        "session_id": "s-9",
        "messages": [{"role": "user", "content": "2+2?"}],
        "response": {"role": "assistant", "content": "4"},
    }
    assert post(server, [turn], token)[1]["acks"][0]["status"] == "accepted"
    outcomes = [
        {
            "type": "outcome",
            "id": "o-1",
            "kind": "reward",
            "session_id": "s-9",
            "turn_id": "t-1",
            "value": 1.0,
        },
        {"type": "outcome", "id": "o-2", "kind": "thumbs", "session_id": "s-9", "value": "up"},
        {
            "type": "outcome",
            "id": "o-3",
            "kind": "preference",
            "session_id": "s-9",
            "turn_id": "t-1",
            "other": {"session_id": "s-9", "turn_id": "t-0"},
        },
        {"type": "outcome", "id": "o-4", "kind": "reward", "session_id": "s-9"},
    ]
    acks = post(server, outcomes, token)[1]["acks"]
    assert [ack["status"] for ack in acks] == ["accepted", "accepted", "accepted", "refused"]
    warehouse = Warehouse(WarehouseSettings.local(home.path))

    def outcome_rows() -> list[dict[str, Any]]:
        if not warehouse.exists(TableName.BRONZE_OUTCOMES):
            return []
        sql = "select * from bronze.outcomes order by event_id"
        return run_query(warehouse, sql, workspace="beta").to_pylist()

    rows = wait_for(lambda: len(outcome_rows()) >= 3 and outcome_rows())
    turn_id = capture_record_id("beta", "turn", "s-9", "t-1")
    assert [(r["event_id"], r["kind"], r["value"]) for r in rows] == [
        ("o-1", "reward", 1.0),
        ("o-2", "feedback", 1.0),
        ("o-3", "preference", None),
    ]
    assert rows[0]["record_id"] == turn_id
    assert rows[2]["other_record_id"] == capture_record_id("beta", "turn", "s-9", "t-0")
    assert wait_for(lambda: landed(home, "beta", turn_id))[0]["format"] == "openai"
    resource = WarehouseResource(home=str(home.path))
    with dg.build_sensor_context(resources={"warehouse": resource}) as context:
        result = outcomes_sensor(context)
        assert isinstance(result, dg.SensorResult) and len(result.run_requests or []) == 1
    with dg.build_sensor_context(resources={"warehouse": resource}) as context:
        observed = capture_sensor(context)
        assert isinstance(observed, dg.SensorResult)
        keys = {event.asset_key for event in observed.asset_events}
        assert keys == {dg.AssetKey(["bronze", "records"]), dg.AssetKey(["bronze", "outcomes"])}


def test_another_workspaces_token_reads_nothing_of_alpha_on_any_path(
    server: Server, home: CaptureHome
) -> None:
    alpha = post(server, [session("secret-alpha", "alpha only")], home.token("alpha"))[1]
    wait_for(lambda: landed(home, "alpha", alpha["acks"][0]["record_id"]))
    beta = home.token("beta", "reader")
    # the service
    status, answer, _ = call(server.url + "/v1/records?workspace=alpha", token=beta)
    assert status == 403 and "not 'alpha'" in answer["error"]
    status, answer, _ = call(
        server.url + "/v1/query", "POST", {"sql": "select * from bronze.records"}, token=beta
    )
    assert status == 200 and answer["rows"]
    assert {row["workspace"] for row in answer["rows"]} == {"beta"}
    mine = server.url + "/v1/records?session_id=secret-alpha"
    status, answer, _ = call(mine, token=home.token("alpha", "reader"))
    assert status == 200 and [row["record_id"] for row in answer["rows"]] == [
        alpha["acks"][0]["record_id"]
    ]
    # the CLI
    sql = "select count(*) n from bronze.records where payload like '%alpha only%'"
    result = runner.invoke(
        app, ["query", sql, "--format", "json", "--home", str(home.path), "--token", beta]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"n": 0}
    result = runner.invoke(
        app, ["show", "bronze.records", "--home", str(home.path), "--token", beta, "--limit", "50"]
    )
    assert result.exit_code == 0 and "alpha" not in result.output
    # the Python API
    warehouse = Warehouse(WarehouseSettings.local(home.path))
    assert query_as(beta, sql, home=home.path).to_pylist() == [{"n": 0}]
    assert run_query(warehouse, sql, workspace="beta").to_pylist() == [{"n": 0}]
    assert run_query(warehouse, sql).to_pylist() == [{"n": 1}]  # the data is there
    # the Dagster resource the assets use to act for a workspace
    reader = WorkspaceReaderResource(home=str(home.path), token=beta)
    assert set(reader.read(TableName.BRONZE_RECORDS)["workspace"].to_pylist()) == {"beta"}
    assert reader.query(sql).to_pylist() == [{"n": 0}]
    assert set(reader.read(TableName.LINEAGE_SOURCES)["workspace"].to_pylist()) == {"beta"}
