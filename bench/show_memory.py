"""Peak memory of ``posttrain show`` as a whole process, for a small and a 10x larger table.

Builds ``bronze.records`` tables of 30k and 300k rows (chat payloads of about 2 KB, written
in one append so that each table is one data file, as one large ingest writes it) in a
temporary warehouse, then runs ``posttrain show bronze.records --limit 3`` and a filtered
``show`` (whose only match is near the end, so the scan reads every row) in a child
process per size, and prints each peak RSS and the large/small ratio. Flat memory means a
ratio near 1.

    .venv/bin/python bench/show_memory.py [--rows 30000 300000] [--payload-bytes 2000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

TABLE = TableName.BRONZE_RECORDS
POSTTRAIN = Path(sys.executable).parent / "posttrain"


def _payloads(rows: int, payload_bytes: int, seed: int = 0) -> list[str]:
    """OpenAI-style chat records of about ``payload_bytes`` of word-like text each."""
    rng = random.Random(seed)
    words = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9))) for _ in range(4000)
    ]
    # Paragraphs are reused across records (text compresses like text), each record unique.
    paragraphs = [" ".join(rng.choices(words, k=60)) for _ in range(3000)]
    per_record = max(1, payload_bytes // 400)
    out = []
    for index in range(rows):
        text = [paragraphs[rng.randrange(len(paragraphs))] for _ in range(per_record)]
        half = len(text) // 2 or 1
        messages = [
            {"role": "user", "content": f"#{index} " + " ".join(text[:half])},
            {"role": "assistant", "content": " ".join(text[half:])},
        ]
        out.append(json.dumps({"messages": messages}))
    return out


def build(home: Path, rows: int, payload_bytes: int) -> None:
    """One append of ``rows`` bronze-like records into the warehouse at ``home``."""
    payloads = _payloads(rows, payload_bytes)
    now = datetime.now(UTC)
    schema = TABLES[TABLE].schema
    columns: dict[str, pa.Array] = {
        "record_id": pa.array([f"{i:016x}" for i in range(rows)]),
        "payload": pa.array(payloads),
        "row_index": pa.array(range(1, rows + 1), pa.int64()),
        "source": pa.array(["bench"] * rows),
        "source_uri": pa.array([f"/data/bench/part-{i // 10_000:04d}.jsonl" for i in range(rows)]),
        "format": pa.array(["openai"] * rows),
        "batch_id": pa.array(["bench-batch"] * rows),
        "ingested_at": pa.array([now] * rows, schema.field("ingested_at").type),
    }
    data = pa.table(
        {field.name: columns.get(field.name, pa.nulls(rows, field.type)) for field in schema}
    )
    Warehouse(WarehouseSettings.local(home)).append(TABLE, data, Lineage("bench"))


# Linux carries a process's peak RSS over fork and exec, so a child of this (large) process
# would report at least our own peak: a small intermediate process starts each measurement.
_MEASURE = """
import os, sys
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def peak_rss_mb(args: list[str]) -> float:
    """Peak resident memory of one ``posttrain`` process, in MB."""
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(POSTTRAIN), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    status, kilobytes = measured.stdout.split()
    if status != "0":
        raise SystemExit(f"posttrain {' '.join(args)} exited with {status}: {measured.stderr}")
    return int(kilobytes) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs=2, default=[30_000, 300_000])
    parser.add_argument("--payload-bytes", type=int, default=2000)
    options = parser.parse_args()
    results: dict[str, list[float]] = {"--limit 3": [], "--where (last rows) --limit 3": []}
    with tempfile.TemporaryDirectory(prefix="posttrain-show-memory-") as tmp:
        for rows in options.rows:
            home = Path(tmp) / f"rows-{rows}"
            build(home, rows, options.payload_bytes)
            size = sum(f.stat().st_size for f in (home / "warehouse").rglob("*.parquet"))
            common = ["show", TABLE, "--home", str(home), "--limit", "3"]
            results["--limit 3"].append(peak_rss_mb(common))
            where = f"row_index >= {rows - 2}"
            results["--where (last rows) --limit 3"].append(
                peak_rss_mb([*common, "--where", where])
            )
            print(
                f"{rows:>9,} rows ({size / 2**20:,.0f} MB of Parquet): "
                + ", ".join(
                    f"show {name}: {values[-1]:,.0f} MB" for name, values in results.items()
                )
            )
    small, large = options.rows
    for name, (low, high) in results.items():
        print(
            f"peak RSS of `posttrain show {name}`, {large:,} vs {small:,} rows: {high / low:.2f}x"
        )


if __name__ == "__main__":
    main()
