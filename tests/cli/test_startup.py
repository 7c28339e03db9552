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
