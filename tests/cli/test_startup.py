"""The CLI starts light: registering every command imports none of the heavy libraries.

Each of these costs from a tenth of a second (pyarrow) to half a second or more (pyiceberg,
Ray, torch) before a command does anything; `posttrain --help` and `posttrain tables` must
answer well under half a second, so only the commands that use them import them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HEAVY = (
    "dagster",
    "duckdb",
    "numpy",
    "pyarrow",
    "pyiceberg",
    "ray",
    "rensa",
    "sqlalchemy",
    "tokenizers",
    "torch",
    "transformers",
)


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return {name.split(".")[0] for name in result.stdout.split()}


def test_importing_the_cli_imports_no_heavy_library() -> None:
    assert _modules_after("import posttrain.cli").isdisjoint(HEAVY)


def test_help_imports_no_heavy_library() -> None:
    code = (
        "import sys\nfrom posttrain.cli import main\nsys.argv = ['posttrain', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert _modules_after(code).isdisjoint(HEAVY)


def test_tables_on_the_embedded_catalog_imports_no_heavy_library(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom posttrain.cli import main\n"
        f"sys.argv = ['posttrain', 'tables', '--home', {str(tmp_path)!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert _modules_after(code).isdisjoint(HEAVY)


def test_dedup_imports_no_pandas(tmp_path: Path) -> None:
    """pyarrow imports pandas (half a second) on its first conversion unless told not to."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "texts.parquet"
    pq.write_table(pa.table({"text": ["one two three four five"] * 2}), source)
    code = (
        "import sys\nfrom posttrain.cli import main\n"
        f"sys.argv = ['posttrain', 'dedup', {str(source)!r}, "
        f"'--out', {str(tmp_path / 'out.parquet')!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    modules = _modules_after(code)
    assert "rensa" in modules  # it did run
    assert "pandas" not in modules


def test_every_command_maps_to_the_module_that_registers_it() -> None:
    from posttrain.cli import COMMAND_MODULES, app

    registered = {
        command.name or command.callback.__name__: command.callback.__module__
        for command in app.registered_commands
        if command.callback is not None
    }
    for group in app.registered_groups:
        typer_app = group.typer_instance
        assert typer_app is not None
        name = group.name if isinstance(group.name, str) else typer_app.info.name
        callback = typer_app.registered_commands[0].callback
        assert isinstance(name, str) and callback is not None
        registered[name] = callback.__module__
    assert {name: f"posttrain.cli.{module}" for name, module in COMMAND_MODULES.items()} == (
        registered
    )


def test_a_command_imports_only_its_own_command_module() -> None:
    code = (
        "import sys\nfrom posttrain.cli import main\nsys.argv = ['posttrain', 'dedup', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "Find exact and near-duplicate rows" in result.stdout
    commands = {name for name in result.stdout.split() if name.startswith("posttrain.cli.")}
    assert commands - {"posttrain.cli._app", "posttrain.cli._files"} == {"posttrain.cli.dedup"}
