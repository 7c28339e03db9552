"""CaptureService.accept without HTTP: concurrent copies of one event, failure counter."""

from __future__ import annotations

import asyncio
from pathlib import Path

from capture_server import make_home

from posttrain.platform.access import WorkspaceStore
from posttrain.platform.capture.flusher import entries_of
from posttrain.platform.capture.service import CaptureService
from posttrain.platform.settings import load_settings


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
