"""``make demo-capture``: an agent captured by changing its base URL, late rewards, a new
corpus version.

1. starts a local stand-in for an OpenAI-compatible model server and ``posttrain serve``
   (the capture service, its proxy and its OTLP receiver) on 127.0.0.1;
2. a scripted agent, using the ``openai`` client with only its base URL and API key changed,
   runs tool-using sessions through the proxy (half of them streamed), then reports a reward
   per session some time later as an outcome (``POST /v1/outcomes``);
3. a second agent, instrumented with OpenTelemetry, exports one GenAI trace (``/v1/traces``);
4. the service flushes its write-ahead log to ``bronze.records`` / ``bronze.outcomes`` and
   stops; silver takes the new records; the outcomes sensor sees the new outcomes and its
   ``outcomes_loop`` run re-joins ``silver.labeled`` and cuts a new corpus version.

The scripted sessions say the same things on every run, so on a second run in the same
home silver rejects them as duplicates of the first run's (the table says so) and the new
version carries only their new outcomes.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from typing import Any

import dagster as dg
from rich.table import Table

from posttrain.cli._app import console
from posttrain.platform.access import Role, WorkspaceStore
from posttrain.platform.capture.proxy import ProxySettings
from posttrain.platform.settings import Settings, load_settings
from posttrain.platform.warehouse import Warehouse

WORKSPACE = "demo-agents"
SESSIONS = 8
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Search the product documentation.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]
QUESTIONS = [
    "How do I rotate an API key?",
    "What is the rate limit of the batch endpoint?",
    "Can I export a dataset to Parquet?",
    "How do I invite a teammate to a workspace?",
    "Why did my fine-tuning job fail with a timeout?",
    "Where do I find the audit log?",
    "How do I delete a conversation permanently?",
    "Which regions store my data?",
]


def _token(settings: Settings) -> str:
    store = WorkspaceStore.open(settings.home)
    if WORKSPACE not in store.workspaces:
        store.create(WORKSPACE, "sessions captured by make demo-capture")
    return store.issue_token(WORKSPACE, Role.WRITER, "demo-capture")[0]


def _run_agent(base_url: str, token: str) -> list[tuple[str, str, bool]]:
    """Tool-using sessions through the proxy; returns (session id, last turn id, streamed)."""
    import openai

    done = []
    run = time.strftime("%H%M%S")  # a second run of the demo captures new sessions
    for number, question in enumerate(QUESTIONS[:SESSIONS]):
        session_id = f"support-{run}-{number:02d}"
        client = openai.OpenAI(
            base_url=base_url,
            api_key=token,
            max_retries=0,
            timeout=30,
            default_headers={"X-Posttrain-Session": session_id},
        )
        streamed = number % 2 == 1
        messages: list[Any] = [
            {"role": "system", "content": "You are the support agent of Acme Cloud."},
            {"role": "user", "content": question},
        ]
        first = _call(client, messages, streamed)
        call = first.choices[0].message.tool_calls[0]
        messages.append(first.choices[0].message.model_dump(exclude_none=True))
        messages.append(
            {"role": "tool", "tool_call_id": call.id, "content": f"3 articles about {question}"}
        )
        final = _call(client, messages, streamed)
        done.append((session_id, final.id, streamed))
        console.print(
            f"  agent session {session_id} ({'streamed' if streamed else 'not streamed'}): "
            f"tool call {call.function.name}({call.function.arguments[:40]}…), then "
            f"{final.choices[0].message.content[:50]!r}",
            highlight=False,
        )
    return done


def _call(client: Any, messages: list[Any], streamed: bool) -> Any:
    if not streamed:
        return client.chat.completions.create(
            model="acme-support-1", messages=messages, tools=TOOLS
        )
    with client.chat.completions.stream(
        model="acme-support-1", messages=messages, tools=TOOLS
    ) as stream:
        return stream.get_final_completion()


def _send_rewards(
    url: str, token: str, sessions: list[tuple[str, str, bool]], trace_id: str
) -> None:
    import httpx2

    outcomes = [
        {
            "id": f"reward-{session_id}",
            "kind": "reward",
            "session_id": session_id,
            "turn_id": turn_id,
            "value": 0.0 if index % 3 == 2 else 1.0,
        }
        for index, (session_id, turn_id, _) in enumerate(sessions)
    ]
    # The traced agent's conversation is the session named by its trace id.
    outcomes.append(
        {"id": f"reward-{trace_id}", "kind": "reward", "session_id": trace_id, "value": 1.0}
    )
    answer = httpx2.post(
        f"{url}/v1/outcomes",
        json=outcomes,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    console.print(
        f"  late rewards: {answer['accepted']} accepted, {answer['duplicate']} duplicate, "
        f"{answer['refused']} refused"
    )


def _send_trace(url: str, token: str) -> str:
    """One GenAI-instrumented agent run exported with the OpenTelemetry SDK."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = OTLPSpanExporter(
        endpoint=f"{url}/v1/traces", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "billing-agent"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("billing-agent")
    user = [{"role": "user", "parts": [{"type": "text", "content": "Why was I billed twice?"}]}]
    call = {"type": "tool_call", "id": "call_inv", "name": "list_invoices", "arguments": {}}
    with tracer.start_as_current_span(
        "invoke_agent billing", attributes={"gen_ai.operation.name": "invoke_agent"}
    ) as root:
        with tracer.start_as_current_span(
            "chat acme-support-1",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "acme-support-1",
                "gen_ai.input.messages": json.dumps(user),
                "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [call]}]),
            },
        ):
            pass
        with tracer.start_as_current_span(
            "execute_tool list_invoices",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "list_invoices",
                "gen_ai.tool.call.id": "call_inv",
                "gen_ai.tool.call.result": '[{"id": "inv-1"}, {"id": "inv-1-dup"}]',
            },
        ):
            pass
        answer = [{"role": "assistant", "parts": [{"type": "text", "content": "A duplicate."}]}]
        with tracer.start_as_current_span(
            "chat acme-support-1",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "acme-support-1",
                "gen_ai.output.messages": json.dumps(answer),
            },
        ):
            pass
        trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()
    return trace_id


def _capture(settings: Settings) -> tuple[int, dict[str, Any], list[str]]:
    """Steps 1–3 and the flush; returns (events flushed, service counters, the bronze
    record ids of the rewarded turns and of the traced session)."""
    from posttrain.platform.capture.events import capture_record_id
    from posttrain.serve.app import create_app
    from posttrain.serve.fake_openai import ServerThread, create_fake_openai

    token = _token(settings)
    with ServerThread(create_fake_openai()) as upstream:
        served = settings.model_copy(
            update={
                "proxy": ProxySettings(
                    upstream_url=f"{upstream.url}/v1", api_key_env="POSTTRAIN_DEMO_NO_KEY"
                ),
                "capture": settings.capture.model_copy(update={"flush_interval_s": 1.0}),
            }
        )
        app = create_app(served)
        with ServerThread(app, timeout=120) as server:
            console.print(f"posttrain serve on {server.url}, model server on {upstream.url}")
            sessions = _run_agent(f"{server.url}/v1", token)
            trace_id = _send_trace(server.url, token)
            console.print(f"  OpenTelemetry trace {trace_id} exported to /v1/traces")
            time.sleep(0.5)  # the last proxied turns are recorded just after their answers
            _send_rewards(server.url, token, sessions, trace_id)
            service = app.state.service
        # Leaving the block stops the app: the proxy drains, the log flushes to bronze.
        counters = dict(service.metrics.counters)
    rewarded = [capture_record_id(WORKSPACE, "turn", sid, tid) for sid, tid, _ in sessions]
    rewarded.append(capture_record_id(WORKSPACE, "session", trace_id))
    return counters.get("events_flushed_total", 0), counters, rewarded


def _loop(settings: Settings) -> int:
    """Silver takes the new records; the outcomes sensor's run cuts a version."""
    from posttrain.definitions import defs
    from posttrain.jobs.outcomes import outcomes_sensor
    from posttrain.platform.versions import versions
    from posttrain.resources import WarehouseResource

    instance = dg.DagsterInstance.get()
    logs = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    silver = dg.AssetSelection.groups("eval", "silver").resolve(defs.resolve_asset_graph())
    result = defs.resolve_job_def("sft_pipeline").execute_in_process(
        instance=instance, asset_selection=list(silver), raise_on_error=False, run_config=logs
    )
    if not result.success:
        console.print(f"[bold red]silver run {result.run_id} failed[/]")
        return 1
    console.print(f"silver took the captured records (run {result.run_id})")
    # A context manager: the warehouse resource nests dagster-aws's S3 resource.
    with dg.build_sensor_context(
        instance=instance, resources={"warehouse": WarehouseResource(home=str(settings.home))}
    ) as context:
        tick = outcomes_sensor(context)
    if not isinstance(tick, dg.SensorResult) or not tick.run_requests:
        console.print(f"[bold red]the outcomes sensor requested no run: {tick}[/]")
        return 1
    request = tick.run_requests[0]
    console.print(f"outcomes sensor: new bronze.outcomes snapshot → run {request.run_key}")
    run_config = {**(request.run_config or {}), **logs}
    result = defs.resolve_job_def("outcomes_loop").execute_in_process(
        instance=instance, run_config=run_config, raise_on_error=False, tags=request.tags
    )
    if not result.success:
        console.print(f"[bold red]outcomes_loop run {result.run_id} failed[/]")
        return 1
    warehouse = Warehouse(settings.warehouse)
    corpus = settings.outcomes.corpus
    created = [v for v in versions(warehouse, corpus) if v.event == "create"]
    if created:
        latest = created[-1]
        console.print(
            f"[bold green]new corpus version {corpus}@{latest.version}[/] "
            f"({latest.outcomes_included})",
            highlight=False,
        )
    return 0


def _show(settings: Settings, record_ids: list[str]) -> None:
    from posttrain.platform.query import run_query

    warehouse = Warehouse(settings.warehouse)
    listed = ", ".join(f"'{record_id}'" for record_id in record_ids)  # hex digits only
    rows = run_query(
        warehouse,
        "select json_extract_string(r.payload, '$.session_id') as session_id, r.source, "
        "l.reward, l.num_outcomes, j.reason "
        "from bronze.records r left join silver.labeled l using (record_id) "
        f"left join silver.rejections j using (record_id) where r.record_id in ({listed}) "
        "order by session_id",
    ).to_pylist()
    view = Table(title="This run's rewarded sessions", header_style="bold")
    for column in ("session_id", "source", "silver", "in silver.labeled: reward"):
        view.add_column(column)
    for row in rows:
        reward = "-" if row["reward"] is None else f"{row['reward']:.1f}"
        kept = f"rejected: {row['reason']}" if row["reason"] else "kept"
        view.add_row(row["session_id"], row["source"], kept, reward)
    console.print(view)


def main() -> int:
    """Run the capture demo; print what happened and where to look."""
    # Silver's stages run in this process: a local Ray runtime would cost more to start
    # than these few records take.
    os.environ.setdefault("POSTTRAIN_EXECUTOR", "in_process")
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    settings = load_settings()
    started = time.monotonic()
    console.rule("posttrain capture demo: agents → proxy / OTLP → bronze → labeled@vN")
    flushed, counters, rewarded = _capture(settings)
    console.print(
        f"the service accepted {counters.get('events_accepted_total', 0)} events "
        f"({2 * SESSIONS} proxied turns, 1 OTLP trace, {SESSIONS + 1} rewards), flushed {flushed} "
        f"to bronze; capture failures: {counters.get('capture_failures_total', 0)}"
    )
    if _loop(settings):
        return 1
    _show(settings, rewarded)
    console.rule(f"done in {time.monotonic() - started:.0f}s")
    console.print(
        "Look around:\n"
        '  .venv/bin/posttrain query "select source, count(*) from bronze.records '
        "where workspace = 'demo-agents' group by 1\"\n"
        "  .venv/bin/posttrain version list labeled\n"
        "  make ui      the capture flushes are observations on bronze.records",
        highlight=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
