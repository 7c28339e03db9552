"""A persistent cache of model outputs, so re-running an eval costs no model call.

The key is the SHA-256 of the model's identity, the messages and the generation settings
(canonical JSON): change any of them and the item is asked again. Only complete outputs
are stored; an error is never cached, so a re-run retries exactly the failed items.
SQLite in WAL mode: several eval processes may share one cache file.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

CACHE_FILE = "eval-cache.sqlite"


def cache_key(model: str, messages: list[dict[str, str]], settings: dict[str, Any]) -> str:
    """The cache key of one request."""
    payload = json.dumps(
        {"model": model, "messages": messages, "settings": settings},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class EvalCache:
    """Outputs by :func:`cache_key`, in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        with self._lock, self._db:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outputs ("
                "key TEXT PRIMARY KEY, model TEXT, output TEXT NOT NULL, created_at REAL)"
            )

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT output FROM outputs WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, model: str, output: str) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?)",
                (key, model, output, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outputs").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
