"""The capture write-ahead log: group commit, torn tails, one owner per folder."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from posttrain.platform.capture.wal import WriteAheadLog, encode_entry, read_segment
from posttrain.platform.errors import ConfigError


def test_concurrent_appends_share_fsyncs(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    barrier = threading.Barrier(32, timeout=30)

    def append(number: int) -> None:
        barrier.wait()
        wal.append_sync(encode_entry(b'{"n":%d}' % number), 1)

    threads = [threading.Thread(target=append, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert wal.groups < 32  # group commit: fewer fsyncs than appends
    (segment,) = wal.segments()
    assert len(list(read_segment(segment))) == 32
    wal.close()


def test_a_torn_last_line_is_not_read(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    wal.append_sync(encode_entry(b'{"a":1}') + encode_entry(b'{"a":2}'), 2)
    wal.close()
    (segment,) = WriteAheadLog.segments(wal)
    with segment.open("ab") as handle:
        handle.write(encode_entry(b'{"a":3}')[:-4])  # a crash mid-write
    assert list(read_segment(segment)) == [b'{"a":1}', b'{"a":2}']


def test_a_second_service_cannot_open_the_same_log(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    with pytest.raises(ConfigError, match="in use by another posttrain serve"):
        WriteAheadLog(tmp_path / "wal")
    wal.close()


def test_sealing_makes_a_batch_and_trimming_frees_its_bytes(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal", segment_max_events=2)
    wal.append_sync(encode_entry(b"{}") * 2, 2)
    wal.append_sync(encode_entry(b"{}"), 1)
    (sealed,) = wal.sealed()
    assert len(list(read_segment(sealed))) == 2
    before = wal.pending_bytes
    wal.trim(sealed)
    assert wal.pending_bytes == before - len(encode_entry(b"{}")) * 2
    wal.close()
