"""Every user error of the reading commands is one red line on stderr and exit status 2.

Each row is a command line a user could type; `{home}` is a real warehouse with
``silver.rejections``, `{file}` a plain file and `{missing}` a folder that does not exist.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from posttrain.cli import run
from posttrain.platform.lineage import Lineage
from posttrain.platform.schemas import SILVER_REJECTIONS, TableName
from posttrain.platform.warehouse import Warehouse, WarehouseSettings

T = str(TableName.SILVER_REJECTIONS)

BAD_ARGUMENTS: dict[str, tuple[list[str], str]] = {
    "show: filter that does not parse": (
        ["show", T, "--where", "reason =", "--home", "{home}"],
        "cannot parse at column",
    ),
    "show: filter with an unknown operator": (
        ["show", T, "--where", "reason ~ 'x'", "--home", "{home}"],
        "cannot parse at column 1",
    ),
    "show: filter on an unknown column": (
        ["show", T, "--where", "nope = 1", "--home", "{home}"],
        "nope",
    ),
    "show: filter comparing a string column to a number": (
        ["show", T, "--where", "reason > 1", "--home", "{home}"],
        "--where",
    ),
    "show: unknown column": (
        ["show", T, "--columns", "record_id,nope", "--home", "{home}"],
        "no column 'nope'",
    ),
    "show: limit 0": (["show", T, "--limit", "0", "--home", "{home}"], "--limit"),
    "show: limit not a number": (["show", T, "--limit", "many", "--home", "{home}"], "--limit"),
    "show: no such table": (["show", "silver.nothing", "--home", "{home}"], "no table named"),
    "show: name without namespace": (["show", "rejections", "--home", "{home}"], "no table"),
    "show: home is a file": (["show", T, "--home", "{file}"], "is a file"),
    "show: mistyped home": (["show", T, "--home", "{missing}"], "no such folder"),
    "show: no table given": (["show", "--home", "{home}"], "Missing argument"),
    "show: unknown option": (["show", T, "--wher", "x", "--home", "{home}"], "No such option"),
    "tables: home is a file": (["tables", "--home", "{file}"], "is a file"),
    "tables: mistyped home": (["tables", "--home", "{missing}"], "no such folder"),
    "query: syntax error": (["query", "selec 1", "--home", "{home}"], "line 1, column 1"),
    "query: no such table": (
        ["query", "select * from gold.nothing", "--home", "{home}"],
        "silver.rejections",
    ),
    "query: no such column": (["query", f"select nope from {T}", "--home", "{home}"], "nope"),
    "query: write": (["query", f"delete from {T}", "--home", "{home}"], "read-only"),
    "query: file access": (
        ["query", "select * from read_csv('/etc/passwd')", "--home", "{home}"],
        "disabled",
    ),
    "query: empty": (["query", " ", "--home", "{home}"], "no SQL statement"),
    "query: unknown format": (
        ["query", "select 1", "--format", "xml", "--home", "{home}"],
        "--format",
    ),
    "query: home is a file": (["query", "select 1", "--home", "{file}"], "is a file"),
    "unknown command": (["shwo", T], "No such command"),
}


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    rows = [{"record_id": "r1", "reason": "empty"}]
    Warehouse(WarehouseSettings.local(home)).append(
        T, pa.Table.from_pylist(rows, schema=SILVER_REJECTIONS), Lineage("t")
    )
    plain = tmp_path / "plain.txt"
    plain.write_text("not a warehouse\n")
    return {"home": str(home), "file": str(plain), "missing": str(tmp_path / "hoem")}


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_a_bad_argument_is_one_red_line_and_exit_2(
    case: str, places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    template, expected = BAD_ARGUMENTS[case]
    status = run([part.format(**places) for part in template])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and expected in err, err


def test_a_mistyped_home_creates_no_warehouse(
    places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["tables", "--home", places["missing"]]) == 2
    assert not Path(places["missing"]).exists()


def test_a_good_command_still_exits_0(
    places: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["show", T, "--where", "reason = 'empty'", "--home", places["home"]]) == 0
    assert "r1" in capsys.readouterr().out


def test_a_bug_keeps_its_traceback(places: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import posttrain.platform.query as query  # `show` imports head from there when it runs

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    import posttrain.platform.versions as versions

    monkeypatch.setattr(query, "head", broken)
    monkeypatch.setattr(versions, "resolve", lambda *args: (T, 1))  # show gets to head
    with pytest.raises(RuntimeError, match="a bug"):
        run(["show", T, "--home", places["home"]])
