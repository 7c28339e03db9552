"""JSON text for the Arrow/Parquet values :mod:`json` does not know, without loss."""

from __future__ import annotations

import base64
import datetime as dt
import decimal


def json_default(value: object) -> object:
    """``default=`` for :func:`json.dumps`: bytes, timestamps, durations and decimals.

    >>> import json, datetime
    >>> json.dumps({"at": datetime.date(2026, 1, 2), "raw": b"\\x00"}, default=json_default)
    '{"at": "2026-01-02", "raw": "AA=="}'
    """
    # JSON has no bytes, timestamps or decimals: the closest loss-free text for each.
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    raise TypeError(f"cannot represent {type(value).__name__} as JSON")
