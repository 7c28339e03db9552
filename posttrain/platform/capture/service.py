"""The capture service: validate, apply the workspace's rules, dedupe, log, acknowledge.

:meth:`CaptureService.accept` is what the HTTP routes (and the capture proxy) call. For a
batch it answers per event: ``accepted`` once the event is in the fsync'd write-ahead log,
``duplicate`` when the workspace sent the same key before (logged, flushed or in bronze),
``refused`` with the reason otherwise. A batch never half-fails silently: if the log cannot
make it durable, :class:`CaptureUnavailable` is raised and nothing is acknowledged.

The dedupe index holds the keys of every captured event (loaded at start from bronze and
from the log, then kept in memory), so a retry after a crash, after a flush or from a
second connection is still one row.

``accept`` runs on the event loop of the service (it keeps its index without locks); the
log's writer thread completes the futures it awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from posttrain.platform.access import Workspace
from posttrain.platform.capture.config import CaptureSettings
from posttrain.platform.capture.events import (
    AckStatus,
    EventAck,
    EventError,
    OutcomeEvent,
    OutcomeKind,
    SessionEvent,
    TurnEvent,
    capture_record_id,
    dereference_inline_data,
    parse_event,
)
from posttrain.platform.capture.flusher import (
    CAPTURE_URI_PREFIX,
    Flusher,
    capture_source,
    entries_of,
)
from posttrain.platform.capture.rules import CompiledRules, RuleRefusal
from posttrain.platform.capture.wal import WalClosedError, WriteAheadLog, encode_entry
from posttrain.platform.outcomes.ingest import outcome_id
from posttrain.platform.schemas import TableName
from posttrain.platform.settings import Settings
from posttrain.platform.warehouse import Warehouse

log = logging.getLogger(__name__)

AnyEvent = SessionEvent | TurnEvent | OutcomeEvent


class CaptureUnavailable(RuntimeError):
    """The service cannot make events durable now; ``status`` 429 (log full) or 503."""

    def __init__(self, status: int, reason: str, retry_after_s: int = 1) -> None:
        self.status = status
        self.reason = reason
        self.retry_after_s = retry_after_s
        super().__init__(reason)


class Metrics:
    """Counters the service exposes at ``/metrics`` (Prometheus text format)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()

    def inc(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.counters[name] += amount

    def get(self, name: str) -> int:
        return self.counters[name]


class _Refused(ValueError):
    pass


def _thumbs(value: Any) -> float:
    if value in ("up", True) or (isinstance(value, int | float) and value > 0):
        return 1.0
    if value in ("down", False) or (isinstance(value, int | float) and value < 0):
        return -1.0
    raise _Refused(f"thumbs needs value 'up' or 'down' (or +1/-1), found {value!r}")


def _number(value: Any, kind: str, *, required: bool) -> float | None:
    if value is None:
        if required:
            raise _Refused(f"{kind} needs a numeric 'value'")
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, str):
        raise _Refused(f"{kind} needs a numeric 'value', found {value!r}")
    return float(value)


def outcome_row(event: OutcomeEvent, data: Mapping[str, Any], workspace: str) -> dict[str, Any]:
    """The ``bronze.outcomes`` columns of an outcome event (``arrived_at`` set at flush)."""
    kind = event.kind
    value: float | None
    text = data.get("text")
    other: str | None = None
    bronze_kind = kind.value
    if kind is OutcomeKind.THUMBS:
        value, bronze_kind = _thumbs(event.value), "feedback"
        text = text or ("thumbs_up" if value > 0 else "thumbs_down")
    elif kind is OutcomeKind.FEEDBACK:
        value = _number(event.value, "feedback", required=False)
        if not text:
            raise _Refused("feedback needs a 'text'")
    elif kind is OutcomeKind.PREFERENCE:
        if event.other is None:
            raise _Refused("preference needs 'other': the session/turn it was preferred over")
        other = capture_record_id(workspace, *event.other.key())
        value = _number(event.value, "preference", required=False)
    else:
        value = _number(event.value, kind.value, required=kind is OutcomeKind.REWARD)
        if value is None and not text:
            raise _Refused(f"{kind.value} needs a 'value' or a 'text'")
    record_id = capture_record_id(workspace, *event.target().key())
    source = capture_source(workspace, event.source)
    return {
        "outcome_id": outcome_id(record_id, bronze_kind, value, text, source, event.id, other),
        "record_id": record_id,
        "kind": bronze_kind,
        "value": value,
        "text": text,
        "source": source,
        "event_id": event.id,
        "workspace": workspace,
        "other_record_id": other,
    }


def record_row(
    event: SessionEvent | TurnEvent,
    data: Mapping[str, Any],
    workspace: str,
    record_id: str | None = None,
) -> dict[str, Any]:
    """The ``bronze.records`` columns of a session or turn (``ingested_at`` set at ack)."""
    payload: dict[str, Any] = {"messages": list(data["messages"])}
    if isinstance(event, TurnEvent):
        if data.get("response") is not None:
            payload["messages"].append(data["response"])
        payload["session_id"] = event.session_id
        payload["turn_id"] = event.turn_id or event.id
        turn = payload["turn_id"]
        uri = f"{CAPTURE_URI_PREFIX}{workspace}/sessions/{event.session_id}/turns/{turn}"
    else:
        payload["session_id"] = event.session_id or event.id
        uri = f"{CAPTURE_URI_PREFIX}{workspace}/sessions/{payload['session_id']}"
    payload["event_id"] = event.id
    for name in ("model", "tools", "metadata"):
        if data.get(name):
            payload[name] = data[name]
    text = orjson.dumps(payload).decode()
    if '"data:' in text:  # the walk costs more than the search: only when there is one
        text = orjson.dumps(dereference_inline_data(payload)[0]).decode()
    return {
        "record_id": record_id or event.record_id(workspace),
        "payload": text,
        "source": capture_source(workspace, event.source),
        "source_uri": uri,
        "workspace": workspace,
        "format": "openai",
    }


class CaptureService:
    """Accepts events into the log; a :class:`Flusher` moves them to bronze.

    Create it, call :meth:`start` (loads the dedupe index, opens the log, replays what a
    previous run left), then :meth:`accept` from the event loop; :meth:`stop` flushes.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.capture: CaptureSettings = settings.capture
        self.metrics = Metrics()
        self._keys: set[str] = set()
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._rules: dict[tuple[str, Any], CompiledRules] = {}
        self.wal: WriteAheadLog | None = None
        self.flusher: Flusher | None = None

    @property
    def wal_dir(self) -> Path:
        return self.capture.wal_path(self.settings.home)

    def open_warehouse(self) -> Warehouse:
        return Warehouse(self.settings.warehouse)

    def start(self) -> None:
        """Load the dedupe index, open the log, start the flusher (which replays the log)."""
        warehouse = self.open_warehouse()
        # pyarrow imports pandas on first use of Python lists: pay it at start, not in the
        # first flush under load.
        pa.array(["warm-up"], pa.string())
        self._keys = self._bronze_keys(warehouse)
        wal = WriteAheadLog(
            self.wal_dir,
            fsync=self.capture.fsync,
            segment_max_bytes=self.capture.flush_max_bytes,
            segment_max_events=self.capture.flush_max_events,
        )
        for segment in wal.segments():
            for entry in entries_of(segment):
                self._keys.add(entry["k"])
        self.wal = wal
        self.flusher = Flusher(wal, warehouse, self.capture.flush_interval_s, self.metrics)
        wal.on_sealed = self.flusher.wake
        self.flusher.start()

    def stop(self, *, flush: bool = True) -> None:
        """Stop accepting, and (by default) flush everything logged to bronze."""
        if self.flusher is not None:
            self.flusher.stop(flush=flush)
        if self.wal is not None:
            self.wal.close()

    @staticmethod
    def _bronze_keys(warehouse: Warehouse) -> set[str]:
        keys: set[str] = set()
        records = TableName.BRONZE_RECORDS
        if warehouse.exists(records) and warehouse.snapshot_id(records) is not None:
            ids = warehouse.read(
                records,
                columns=("record_id",),
                row_filter=f"source_uri LIKE '{CAPTURE_URI_PREFIX}%'",
            )["record_id"]
            keys.update(ids.to_pylist())
        erasures = TableName.LINEAGE_ERASURES
        if warehouse.exists(erasures) and warehouse.snapshot_id(erasures) is not None:
            # A forgotten session stays forgotten: a client's retry is a duplicate, not new.
            erased = warehouse.read(erasures, columns=("record_ids",))["record_ids"]
            keys.update(rid for ids in erased.to_pylist() for rid in ids or ())
        outcomes = TableName.BRONZE_OUTCOMES
        if warehouse.exists(outcomes) and warehouse.snapshot_id(outcomes) is not None:
            table = warehouse.table(outcomes)
            if "workspace" in table.schema().column_names:
                rows = warehouse.read(
                    outcomes, columns=("workspace", "event_id"), row_filter="workspace IS NOT NULL"
                )
                rows = rows.filter(pc.is_valid(rows["event_id"]))
                for ws, event_id in zip(
                    rows["workspace"].to_pylist(), rows["event_id"].to_pylist(), strict=True
                ):
                    keys.add(capture_record_id(ws, "outcome", event_id))
        return keys

    def rules_for(self, workspace: Workspace) -> CompiledRules:
        key = (workspace.name, workspace.rules)
        compiled = self._rules.get(key)
        if compiled is None:
            compiled = self._rules[key] = CompiledRules(workspace.rules)
        return compiled

    def record_capture_failure(self, reason: str = "proxy") -> None:
        """Count a capture that failed outside the service (the proxy calls this)."""
        self.metrics.inc("capture_failures_total")
        self.metrics.inc(f"capture_failures_total:{reason}")
        log.warning("capture failure (%s)", reason)

    def check_room(self) -> None:
        """Raise 429 when the log holds more unflushed bytes than allowed."""
        wal = self.wal
        if wal is None:
            raise CaptureUnavailable(503, "the capture service is not started")
        if wal.pending_bytes > self.capture.max_wal_bytes:
            self.metrics.inc("backpressure_total")
            retry = max(1, int(min(self.capture.flush_interval_s, 30)))
            raise CaptureUnavailable(
                429,
                f"the capture log holds {wal.pending_bytes:,} unflushed bytes "
                f"(limit {self.capture.max_wal_bytes:,}); retry later",
                retry,
            )

    def _prepare(
        self, workspace: Workspace, raw: Any, rules: CompiledRules
    ) -> tuple[str, str | None, dict[str, Any]]:
        """(key, record id, log entry) of one event, or raises EventError / RuleRefusal /
        _Refused."""
        # Decoded JSON (a dict) is the common case: test it first, a union isinstance is slow.
        if isinstance(raw, dict) or not isinstance(raw, SessionEvent | TurnEvent | OutcomeEvent):
            event: AnyEvent = parse_event(raw)
            data: dict[str, Any] = dict(raw)
        else:
            event = raw
            data = raw.model_dump(mode="json", exclude_none=True)
        data = rules.apply(data)
        key = event.record_id(workspace.name)
        if isinstance(event, OutcomeEvent):
            return key, None, {"k": key, "t": "o", "row": outcome_row(event, data, workspace.name)}
        row = record_row(event, data, workspace.name, key)
        return key, row["record_id"], {"k": key, "t": "r", "row": row}

    async def accept(self, workspace: Workspace, events: Sequence[Any]) -> list[EventAck]:
        """Log ``events`` (models or decoded JSON objects) for ``workspace``; one ack each.

        Raises:
            CaptureUnavailable: 429 when the log is full, 503 when it cannot write; nothing
                of the batch is acknowledged then.
        """
        self.check_room()
        assert self.wal is not None
        rules = self.rules_for(workspace)
        now_us = time.time_ns() // 1000
        acks: list[EventAck | None] = [None] * len(events)
        lines: list[bytes] = []
        fresh: dict[str, tuple[int, str | None, str | None]] = {}
        waits: list[tuple[int, str | None, str, asyncio.Future[None]]] = []
        for index, raw in enumerate(events):
            client_id = _client_id(raw)
            try:
                key, record_id, entry = self._prepare(workspace, raw, rules)
            except (EventError, RuleRefusal, _Refused) as exc:
                acks[index] = EventAck(
                    index=index, id=client_id, status=AckStatus.REFUSED, reason=str(exc)
                )
                continue
            if key in self._keys or key in fresh:
                acks[index] = EventAck(
                    index=index, id=client_id, status=AckStatus.DUPLICATE, record_id=record_id
                )
                continue
            pending = self._inflight.get(key)
            if pending is not None:  # the same event is being logged by another request
                waits.append((index, client_id, key, pending))
                continue
            entry["at"] = now_us
            lines.append(encode_entry(orjson.dumps(entry)))
            fresh[key] = (index, client_id, record_id)
        if fresh:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()

            def done(error: BaseException | None) -> None:
                loop.call_soon_threadsafe(_settle, future, error)

            for key in fresh:
                self._inflight[key] = future
            try:
                self.wal.submit(b"".join(lines), len(lines), done)
                await future
            except (OSError, WalClosedError) as exc:
                self.metrics.inc("wal_failures_total")
                raise CaptureUnavailable(503, f"the capture log cannot write: {exc}") from None
            finally:
                for key in fresh:
                    self._inflight.pop(key, None)
            self._keys.update(fresh)
            for index, client_id, record_id in fresh.values():
                acks[index] = EventAck(
                    index=index, id=client_id, status=AckStatus.ACCEPTED, record_id=record_id
                )
        for index, client_id, key, pending in waits:
            with contextlib.suppress(OSError, WalClosedError):
                await asyncio.shield(pending)
            status = AckStatus.DUPLICATE if key in self._keys else AckStatus.REFUSED
            acks[index] = EventAck(
                index=index,
                id=client_id,
                status=status,
                reason=None if status is AckStatus.DUPLICATE else "a concurrent copy failed; retry",
            )
        final = [ack for ack in acks if ack is not None]
        counts = Counter(ack.status.value for ack in final)
        for name, count in counts.items():
            self.metrics.inc(f"events_{name}_total", count)
        return final


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _client_id(raw: Any) -> str | None:
    if not isinstance(raw, dict) and isinstance(raw, SessionEvent | TurnEvent | OutcomeEvent):
        return raw.id
    if isinstance(raw, Mapping):
        value = raw.get("id")
        return value if isinstance(value, str) else None
    return None
