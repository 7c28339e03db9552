"""CaptureService.accept without HTTP: concurrent copies of one event, failure counter."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from capture_server import make_home

from posttrain.platform.access import WorkspaceStore
from posttrain.platform.capture.flusher import entries_of
from posttrain.platform.capture.service import CaptureService
from posttrain.platform.schemas import TableName
from posttrain.platform.settings import load_settings
from posttrain.platform.warehouse import Warehouse


def test_two_requests_racing_with_the_same_event_log_it_once(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home", flush_interval_s=3600)
    service = CaptureService(load_settings(home.path))
    service.start()
    try:
        workspace = WorkspaceStore.open(home.path).workspace("alpha")
        event = {"type": "session", "id": "s1", "messages": [{"role": "user", "content": "hi"}]}

        async def race() -> list[str]:
            answers = await asyncio.gather(
                *(service.accept(workspace, [dict(event)]) for _ in range(5))
            )
            return sorted(acks[0].status.value for acks in answers)

        assert asyncio.run(race()) == [
            "accepted",
            "duplicate",
            "duplicate",
            "duplicate",
            "duplicate",
        ]
        assert service.wal is not None
        logged = [e for segment in service.wal.segments() for e in entries_of(segment)]
        assert len(logged) == 1
        service.record_capture_failure("upstream_timeout")
        assert service.metrics.get("capture_failures_total") == 1
    finally:
        service.stop(flush=False)


def test_a_failed_flush_keeps_the_events_in_the_log_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from posttrain.platform.capture import flusher
    from posttrain.platform.errors import CatalogError

    real = flusher.flush_segment
    calls: list[Path] = []

    def catalog_down_once(
        warehouse: Warehouse, segment: Path, known_sources: set[str] | None = None
    ) -> tuple[int, dict[str, int | None]]:
        calls.append(segment)
        if len(calls) == 1:
            assert segment.exists()
            raise CatalogError("catalog unreachable")
        return real(warehouse, segment, known_sources)

    monkeypatch.setattr(flusher, "flush_segment", catalog_down_once)
    home = make_home(tmp_path / "home", flush_interval_s=0.2)
    service = CaptureService(load_settings(home.path))
    service.start()
    try:
        workspace = WorkspaceStore.open(home.path).workspace("alpha")
        event = {"type": "session", "id": "s1", "messages": [{"role": "user", "content": "hi"}]}
        asyncio.run(service.accept(workspace, [event]))
        deadline = time.monotonic() + 60
        warehouse = service.open_warehouse()
        while warehouse.snapshot_id(TableName.BRONZE_RECORDS) is None:
            assert time.monotonic() < deadline, "the flush was not retried"
            time.sleep(0.1)
        assert service.metrics.get("flush_failures_total") == 1
        assert calls[0] == calls[1]  # the same batch, retried
        assert warehouse.info(TableName.BRONZE_RECORDS).rows == 1
    finally:
        service.stop()
