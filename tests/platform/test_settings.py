"""Warehouse and executor settings resolve from one file or the environment, env winning."""

from __future__ import annotations

from pathlib import Path

import pytest

from posttrain.platform.errors import CatalogError, ConfigError
from posttrain.platform.settings import (
    ExecutorSettings,
    WarehouseSettings,
    load_settings,
    redact_uri,
)
from posttrain.platform.warehouse import Warehouse


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_nothing_configured_is_the_embedded_warehouse_under_home(tmp_path: Path) -> None:
    settings = load_settings(tmp_path)
    assert settings.warehouse == WarehouseSettings.local(tmp_path)
    assert settings.executor == ExecutorSettings()
    assert settings.file is None


def test_the_settings_file_in_home_is_read(tmp_path: Path) -> None:
    _write(
        tmp_path / "posttrain.yaml",
        f"warehouse:\n"
        f"  catalog_uri: sqlite:///{tmp_path}/elsewhere/catalog.db\n"
        f"  warehouse: {tmp_path}/elsewhere/data\n"
        f"  properties: {{s3.region: eu-west-1}}\n"
        f"executor:\n  ray_address: ray://head:10001\n",
    )
    settings = load_settings(tmp_path)
    assert settings.file == tmp_path / "posttrain.yaml"
    assert settings.warehouse.catalog_uri == f"sqlite:///{tmp_path}/elsewhere/catalog.db"
    assert settings.warehouse.warehouse == (tmp_path / "elsewhere" / "data").as_uri()
    assert settings.warehouse.properties == {"s3.region": "eu-west-1"}
    assert settings.executor.ray_address == "ray://head:10001"


def test_posttrain_settings_names_a_file_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = _write(tmp_path / "conf" / "lake.yaml", "warehouse:\n  warehouse: ../lake\n")
    monkeypatch.setenv("POSTTRAIN_SETTINGS", str(file))
    settings = load_settings(tmp_path / "home")
    assert settings.file == file
    # A plain path is relative to the settings file, not to the working directory.
    assert settings.warehouse.warehouse == (tmp_path / "lake").as_uri()


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(
        tmp_path / "posttrain.yaml",
        "warehouse:\n  catalog_uri: sqlite:///from-file.db\nexecutor:\n  num_cpus: 2\n",
    )
    monkeypatch.setenv("POSTTRAIN_CATALOG_URI", "sqlite:///from-env.db")
    monkeypatch.setenv("POSTTRAIN_RAY_NUM_CPUS", "3")
    settings = load_settings(tmp_path)
    assert settings.warehouse.catalog_uri == "sqlite:///from-env.db"
    assert settings.executor.num_cpus == 3


def test_secrets_come_from_the_environment_not_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(
        tmp_path / "posttrain.yaml",
        "warehouse:\n  properties:\n    s3.secret-access-key: ${LAKE_SECRET}\n",
    )
    monkeypatch.setenv("LAKE_SECRET", "s3cr3t")
    assert load_settings(tmp_path).warehouse.properties["s3.secret-access-key"] == "s3cr3t"


def test_a_missing_secret_variable_names_file_key_and_variable(tmp_path: Path) -> None:
    file = _write(tmp_path / "posttrain.yaml", "warehouse:\n  catalog_uri: ${NO_SUCH_VAR_X}\n")
    with pytest.raises(ConfigError, match="environment variable NO_SUCH_VAR_X is not set") as exc:
        load_settings(tmp_path)
    assert str(exc.value).startswith(f"{file}: warehouse.catalog_uri: ")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("warehouse:\n  catalog_type: oracle\n", "warehouse.catalog_type"),
        ("warehouse:\n  catalog_urll: sqlite:///x.db\n", "warehouse.catalog_urll"),
        ("executor:\n  num_cpus: 0\n", "executor.num_cpus"),
        ("executor:\n  kind: in_process\n  ray_address: auto\n", "executor"),
        ("warehouse:\n  catalog_type: rest\n", "warehouse"),
        ("ray:\n  address: auto\n", "ray"),
    ],
)
def test_a_bad_settings_file_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, key: str
) -> None:
    file = _write(tmp_path / "posttrain.yaml", text)
    with pytest.raises(ConfigError) as exc:
        load_settings(tmp_path)
    message = str(exc.value)
    assert message.startswith(f"{file}: {key}: ")
    assert "\n" not in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    file = _write(tmp_path / "posttrain.yaml", "warehouse:\n  catalog_uri: [unclosed\n")
    with pytest.raises(ConfigError, match=rf"^{file}, line \d+: not valid YAML"):
        load_settings(tmp_path)


def test_a_bad_environment_variable_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTTRAIN_RAY_NUM_CPUS", "many")
    with pytest.raises(ConfigError, match=r"^environment variable POSTTRAIN_RAY_NUM_CPUS"):
        load_settings(tmp_path)


def test_posttrain_settings_pointing_nowhere_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTTRAIN_SETTINGS", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="no such settings file"):
        load_settings(tmp_path)


def test_a_bad_settings_file_creates_nothing(tmp_path: Path) -> None:
    _write(tmp_path / "posttrain.yaml", "warehouse:\n  catalog_type: nope\n")
    with pytest.raises(ConfigError):
        Warehouse(load_settings(tmp_path).warehouse)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["posttrain.yaml"]


def test_a_catalog_error_never_shows_the_password(tmp_path: Path) -> None:
    # Nothing listens on port 9: the connection fails, and the message must not leak.
    settings = WarehouseSettings(
        catalog_uri="postgresql+psycopg2://posttrain:hunter2secret@127.0.0.1:9/lake",
        warehouse=(tmp_path / "wh").as_uri(),
    )
    with pytest.raises(CatalogError) as exc:
        Warehouse(settings).table_names()
    assert "hunter2secret" not in str(exc.value)
    assert "posttrain:***@127.0.0.1:9" in str(exc.value)


def test_redact_uri_leaves_uris_without_password_alone() -> None:
    assert redact_uri("sqlite:////tmp/catalog.db") == "sqlite:////tmp/catalog.db"
    assert redact_uri("https://user:pw@rest.example/v1") == "https://user:***@rest.example/v1"


@pytest.mark.parametrize(
    ("settings", "choice", "expected"),
    [
        (ExecutorSettings(), {}, ExecutorSettings(kind="in_process")),
        (ExecutorSettings(kind="ray", num_cpus=3), {}, ExecutorSettings(kind="ray", num_cpus=3)),
        (
            ExecutorSettings(ray_address="auto"),
            {},
            ExecutorSettings(kind="ray", ray_address="auto"),
        ),
        (
            ExecutorSettings(ray_address="auto"),
            {"kind": "in_process"},
            ExecutorSettings(kind="in_process"),
        ),
        (
            ExecutorSettings(kind="in_process"),
            {"ray_address": "ray://h:1"},
            ExecutorSettings(kind="ray", ray_address="ray://h:1"),
        ),
        (
            ExecutorSettings(num_cpus=2),
            {"kind": "ray", "num_cpus": 5},
            ExecutorSettings(kind="ray", num_cpus=5),
        ),
    ],
)
def test_explicit_choices_win_over_settings_which_win_over_the_default(
    settings: ExecutorSettings, choice: dict[str, object], expected: ExecutorSettings
) -> None:
    assert settings.choose(default="in_process", **choice) == expected  # type: ignore[arg-type]


def test_a_relative_warehouse_from_the_environment_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POSTTRAIN_WAREHOUSE", "lake")
    assert load_settings(tmp_path / "home").warehouse.warehouse == (tmp_path / "lake").as_uri()


def test_the_late_arrival_window_is_read_from_the_outcomes_section(tmp_path: Path) -> None:
    _write(tmp_path / "posttrain.yaml", "outcomes:\n  window_hours: 6\n")

    assert load_settings(tmp_path).outcomes.window_hours == 6
    assert load_settings(tmp_path / "none").outcomes.window_hours == 24


def test_a_negative_window_names_the_key(tmp_path: Path) -> None:
    from posttrain.platform.errors import ConfigError

    _write(tmp_path / "posttrain.yaml", "outcomes:\n  window_hours: -1\n")

    with pytest.raises(ConfigError, match=r"posttrain.yaml: outcomes.window_hours"):
        load_settings(tmp_path)
