"""Where posttrain keeps its state, how it reaches its warehouse, and where heavy work runs.

Resolved here, once, for every entry point: the CLI, the Dagster resources, ``make demo``
and scripts all call :func:`load_settings`, so they reach the same catalog. The precedence,
highest first:

1. explicit arguments (a CLI flag, a field set on a Dagster resource);
2. environment variables (:data:`ENV_VARS`, e.g. ``POSTTRAIN_CATALOG_URI``);
3. the settings file: ``$POSTTRAIN_SETTINGS``, else ``$POSTTRAIN_HOME/posttrain.yaml`` if it
   exists;
4. the embedded default: a SQLite catalog and a local warehouse folder under the home.

Example ``posttrain.yaml`` (secrets come from the environment through ``${VAR}``, so the
file itself never holds one)::

    warehouse:
      catalog_type: sql
      catalog_uri: postgresql+psycopg2://posttrain:${PGPASSWORD}@db/posttrain
      warehouse: s3://lake/posttrain
      properties:
        s3.endpoint: http://minio:9000
    executor:
      ray_address: ray://head:10001
    evals:                      # see EvalSettings
      on_corpus_version:
        - {corpus: sft, suites: [humaneval], model: "openai:http://gpu:8000/v1#m"}
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, ValidationError, model_validator

from posttrain.platform.capture.config import CaptureSettings
from posttrain.platform.capture.otlp import OtlpSettings
from posttrain.platform.capture.proxy import ProxySettings
from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import ConfigError
from posttrain.platform.outcomes.policy import LateArrivalPolicy

HOME_ENV = "POSTTRAIN_HOME"
SETTINGS_ENV = "POSTTRAIN_SETTINGS"
SETTINGS_FILE = "posttrain.yaml"

CatalogType = Literal["sql", "rest", "glue", "hive", "dynamodb", "in-memory", "bigquery"]
ExecutorKind = Literal["in_process", "ray"]

# Environment variable → (section, key) of the settings file it overrides.
ENV_VARS: dict[str, tuple[str, str]] = {
    "POSTTRAIN_CATALOG_NAME": ("warehouse", "catalog_name"),
    "POSTTRAIN_CATALOG_TYPE": ("warehouse", "catalog_type"),
    "POSTTRAIN_CATALOG_URI": ("warehouse", "catalog_uri"),
    "POSTTRAIN_WAREHOUSE": ("warehouse", "warehouse"),
    "POSTTRAIN_EXECUTOR": ("executor", "kind"),
    "POSTTRAIN_RAY_ADDRESS": ("executor", "ray_address"),
    "POSTTRAIN_RAY_NUM_CPUS": ("executor", "num_cpus"),
    "POSTTRAIN_VIEWER_URL": ("viewer", "base_url"),
    "POSTTRAIN_PROXY_UPSTREAM": ("proxy", "upstream_url"),
    # Where an S3-compatible warehouse is (MinIO, moto, another region): pyiceberg's S3
    # file IO properties. Credentials are not settings: the standard AWS chain finds them.
    "POSTTRAIN_S3_ENDPOINT": ("warehouse", "properties.s3.endpoint"),
    "POSTTRAIN_S3_REGION": ("warehouse", "properties.s3.region"),
}

# Catalog property names whose values are secrets: shown as ``***`` wherever settings are
# printed (reprs, dumps for messages, error text).
_SECRET_PROPERTY = re.compile(r"secret|password|token|credential|session|private", re.IGNORECASE)

_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def checkout_root() -> Path | None:
    """The repository checkout this package runs from, if it runs from one (editable install)."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def project_root() -> Path:
    """The checkout root, or the working directory when installed from a wheel."""
    return checkout_root() or Path.cwd()


def posttrain_home() -> Path:
    """``$POSTTRAIN_HOME``, else ``.posttrain/`` in the project root (gitignored).

    The embedded catalog (``catalog.db``), the warehouse (``warehouse/``) and Dagster's
    storage live here, so deleting this folder resets everything.
    """
    configured = os.environ.get(HOME_ENV)
    return Path(configured).expanduser().resolve() if configured else project_root() / ".posttrain"


def redact_uri(uri: str) -> str:
    """``uri`` with any password replaced by ``***``, fit for messages, logs and metadata.

    Example:
        >>> redact_uri("postgresql://posttrain:hunter2@db:5432/lake")
        'postgresql://posttrain:***@db:5432/lake'
    """
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class WarehouseSettings(FrozenConfig):
    """How to reach the Iceberg catalog and where table data lives.

    ``catalog_type`` ``sql`` takes a SQLAlchemy URI (SQLite or Postgres); ``rest``,
    ``glue`` and the others pass ``properties`` through to pyiceberg's ``load_catalog``,
    which is also where S3 endpoints go (``s3.endpoint``, ``s3.region``, ...). Credentials
    belong in the environment (``${VAR}`` in the settings file, or pyiceberg's own
    ``PYICEBERG_CATALOG__POSTTRAIN__...`` variables), never in a file.
    """

    catalog_name: str = "posttrain"
    catalog_type: CatalogType = "sql"
    catalog_uri: str | None = None
    warehouse: str
    properties: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def local(cls, home: str | Path | None = None) -> WarehouseSettings:
        """The embedded default: SQLite catalog and local warehouse under ``home``."""
        root = Path(home).resolve() if home is not None else posttrain_home()
        return cls(
            catalog_uri=f"sqlite:///{root / 'catalog.db'}",
            warehouse=(root / "warehouse").as_uri(),
        )

    def catalog_properties(self) -> dict[str, str]:
        """The properties pyiceberg's ``load_catalog`` takes."""
        props = {"type": self.catalog_type, "warehouse": self.warehouse, **self.properties}
        if self.catalog_uri is not None:
            props["uri"] = self.catalog_uri
        return props

    def redacted(self) -> dict[str, Any]:
        """These settings as a mapping fit to print: passwords and secret properties hidden."""
        return {
            "catalog_name": self.catalog_name,
            "catalog_type": self.catalog_type,
            "catalog_uri": redact_uri(self.catalog_uri) if self.catalog_uri else None,
            "warehouse": self.warehouse,
            "properties": {
                key: "***" if _SECRET_PROPERTY.search(key) else value
                for key, value in self.properties.items()
            },
        }

    def __repr_args__(self) -> Any:
        # pydantic's repr (and so str(), f-strings and tracebacks) shows the redacted form.
        return list(self.redacted().items())

    def describe(self) -> str:
        """Catalog and location in one line, passwords hidden (for messages and logs)."""
        where = redact_uri(self.catalog_uri) if self.catalog_uri else "no uri"
        return (
            f"{self.catalog_type} catalog {self.catalog_name!r} at {where}, "
            f"data in {self.warehouse}"
        )


class ExecutorSettings(FrozenConfig):
    """Where the heavy stages (dedup, decontamination, tokenization) run.

    ``ray_address`` (``auto``, ``ray://head:10001``) runs them on that Ray cluster.
    Otherwise ``kind`` chooses: ``ray`` starts a local Ray runtime with ``num_cpus``
    workers (all cores when unset), ``in_process`` runs every batch in the calling process.
    ``kind`` unset leaves the choice to the entry point: the Dagster resource starts local
    Ray, a CLI command follows its ``--workers``.
    """

    kind: ExecutorKind | None = None
    ray_address: str | None = None
    num_cpus: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _address_means_ray(self) -> ExecutorSettings:
        if self.kind == "in_process" and self.ray_address:
            raise ValueError("ray_address is set, so kind must be ray (or left unset)")
        return self

    def choose(
        self,
        *,
        default: ExecutorKind,
        kind: ExecutorKind | None = None,
        ray_address: str | None = None,
        num_cpus: int | None = None,
    ) -> ExecutorSettings:
        """These settings with an entry point's explicit choices laid over them.

        The result's ``kind`` is always set. An explicit address means ``ray``; an explicit
        kind wins over the settings; a configured address means ``ray``; then the settings'
        kind, then ``default``.
        """
        chosen: ExecutorKind
        if ray_address:
            chosen = "ray"
        elif kind is not None:
            chosen = kind
        elif self.ray_address:
            chosen = "ray"
        else:
            chosen = self.kind or default
        if chosen == "in_process":
            return ExecutorSettings(kind="in_process")
        address = ray_address or self.ray_address
        cpus = num_cpus if num_cpus is not None else self.num_cpus
        return ExecutorSettings(kind="ray", ray_address=address, num_cpus=None if address else cpus)


class _WarehouseFileSettings(FrozenConfig):
    """The ``warehouse:`` section as written: every key optional."""

    catalog_name: str = "posttrain"
    catalog_type: CatalogType = "sql"
    catalog_uri: str | None = None
    warehouse: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rest_needs_a_uri(self) -> _WarehouseFileSettings:
        if self.catalog_type == "rest" and not self.catalog_uri:
            raise ValueError("a rest catalog needs catalog_uri (its endpoint)")
        return self


class ViewerSettings(FrozenConfig):
    """The dataset viewer (``posttrain view``, or ``/view`` of ``posttrain serve``)."""

    base_url: str = "http://127.0.0.1:8765"
    """Where people open the viewer: Dagster asset metadata links to tables under it."""

    checkpoints: dict[str, str] = Field(default_factory=dict)
    """Name → checkpoint id offered on the generate and vibe-check pages:
    ``transformers:/path/to/model`` or ``openai:http://host:8000/v1#model-name``."""


class CorpusEval(FrozenConfig):
    """Eval suites the versions sensor runs on ``model`` for each new version of ``corpus``.

    Results land in ``eval.results`` with ``corpus_version`` ``CORPUS@VERSION``.
    """

    corpus: str = Field(min_length=1, description="Corpus name (e.g. sft), or * for every one.")
    suites: tuple[str, ...] = Field(min_length=1, description="Suite names, e.g. humaneval.")
    model: str = Field(
        min_length=1, description="openai:BASE_URL#MODEL or a checkpoint folder (runner_for)."
    )
    limit: int | None = Field(default=None, ge=1, description="First N items of each suite.")
    max_tokens: int = Field(default=512, ge=1, description="Output token limit per item.")
    timeout_s: float = Field(default=60.0, gt=0, description="Wall time per request.")
    concurrency: int = Field(default=4, ge=1, description="Requests in flight.")


class EvalSettings(FrozenConfig):
    """The ``evals:`` section: which evals run on their own.

    Example::

        evals:
          on_corpus_version:
            - corpus: sft
              suites: [humaneval, math_heldout]
              model: openai:http://127.0.0.1:8000/v1#qwen2.5-0.5b-instruct
              limit: 50
    """

    on_corpus_version: tuple[CorpusEval, ...] = ()

    def for_corpus(self, corpus: str) -> list[CorpusEval]:
        """The evals configured for new versions of ``corpus``."""
        return [e for e in self.on_corpus_version if e.corpus in (corpus, "*")]


class _SettingsFile(FrozenConfig):
    warehouse: _WarehouseFileSettings = Field(default_factory=_WarehouseFileSettings)
    executor: ExecutorSettings = Field(default_factory=ExecutorSettings)
    outcomes: LateArrivalPolicy = Field(default_factory=LateArrivalPolicy)
    viewer: ViewerSettings = Field(default_factory=ViewerSettings)
    evals: EvalSettings = Field(default_factory=EvalSettings)
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    otlp: OtlpSettings = Field(default_factory=OtlpSettings)


class Settings(FrozenConfig):
    """Everything :func:`load_settings` resolved, and the file it read (if any)."""

    warehouse: WarehouseSettings
    executor: ExecutorSettings
    home: Path
    outcomes: LateArrivalPolicy = Field(default_factory=LateArrivalPolicy)
    evals: EvalSettings = Field(default_factory=EvalSettings)
    file: Path | None = None
    viewer: ViewerSettings = Field(default_factory=ViewerSettings)
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    otlp: OtlpSettings = Field(default_factory=OtlpSettings)


def settings_file(home: str | Path | None = None) -> Path | None:
    """The settings file in effect: ``$POSTTRAIN_SETTINGS``, else ``<home>/posttrain.yaml``.

    Raises:
        ConfigError: ``$POSTTRAIN_SETTINGS`` names a file that does not exist.
    """
    configured = os.environ.get(SETTINGS_ENV)
    if configured:
        path = Path(configured).expanduser().resolve()
        if not path.is_file():
            raise ConfigError(f"{SETTINGS_ENV}={configured}: no such settings file")
        return path
    root = Path(home).expanduser().resolve() if home is not None else posttrain_home()
    candidate = root / SETTINGS_FILE
    return candidate if candidate.is_file() else None


def _read_file(path: Path) -> dict[str, Any]:
    import yaml  # only when there is a file: keeps CLI start-up light

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        line = f", line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ConfigError(f"{path}{line}: not valid YAML: {exc.problem}") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the settings file: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"{path}: expected a mapping with warehouse: and executor: sections, "
            f"found {type(loaded).__name__}"
        )
    expanded: dict[str, Any] = _expand_env(loaded, path, ())
    return expanded


def _expand_env(value: Any, path: Path, key: tuple[str, ...]) -> Any:
    """Replace ``${VAR}`` in string values by the environment variable (secrets stay out)."""
    if isinstance(value, dict):
        return {k: _expand_env(v, path, (*key, str(k))) for k, v in value.items()}
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                raise ConfigError(
                    f"{path}: {'.'.join(key)}: environment variable {name} is not set"
                )
            return os.environ[name]

        return _ENV_REFERENCE.sub(lookup, value)
    return value


def _from_env(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for variable, (section, key) in ENV_VARS.items():
        value = environ.get(variable)
        if not value:
            continue
        values = overrides.setdefault(section, {})
        if key.startswith("properties."):
            values.setdefault("properties", {})[key.removeprefix("properties.")] = value
        else:
            values[key] = value
    return overrides


def _where(loc: tuple[int | str, ...], file: Path | None, env_keys: dict[str, str]) -> str:
    key = ".".join(str(part) for part in loc)
    variable = env_keys.get(key)
    if variable is not None:
        return f"environment variable {variable} ({key})"
    return f"{file}: {key}" if file is not None else key


def _local_location(value: str, base: Path) -> str:
    """A plain path (no ``scheme://``) as a ``file://`` URI, relative to ``base``."""
    if "://" in value:
        return value
    return (base / Path(value).expanduser()).resolve().as_uri()


def load_settings(home: str | Path | None = None) -> Settings:
    """Resolve warehouse and executor settings from the environment and the settings file.

    Args:
        home: the posttrain home (default ``$POSTTRAIN_HOME`` or ``.posttrain/``): where the
            settings file is looked for and where the embedded catalog and warehouse live.

    Raises:
        ConfigError: one line naming the file (or environment variable) and the key, e.g.
            ``/srv/posttrain.yaml: warehouse.catalog_type: Input should be 'sql', ...``.
            Nothing has been created or written when it is raised.
    """
    root = Path(home).expanduser().resolve() if home is not None else posttrain_home()
    file = settings_file(root)
    raw = _read_file(file) if file is not None else {}
    env = _from_env(os.environ)
    env_keys = {
        f"{section}.{key}": variable
        for variable, (section, key) in ENV_VARS.items()
        if os.environ.get(variable)
    }
    merged: dict[str, Any] = dict(raw)
    for section, values in env.items():
        current = merged.get(section)
        if isinstance(current, dict):
            updated = {**current, **values}
            if isinstance(current.get("properties"), dict) and "properties" in values:
                updated["properties"] = {**current["properties"], **values["properties"]}
            merged[section] = updated
        else:
            merged[section] = values
    try:
        parsed = _SettingsFile.model_validate(merged)
    except ValidationError as exc:
        error = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{_where(error['loc'], file, env_keys)}: {error['msg']}{more}") from None
    written = parsed.warehouse
    # A relative folder is relative to where it was written: the file, or the shell.
    from_env = "warehouse.warehouse" in env_keys
    base = Path.cwd() if from_env else file.parent if file is not None else root
    local = WarehouseSettings.local(root)
    default_uri = local.catalog_uri if written.catalog_type == "sql" else None
    location = _local_location(written.warehouse, base) if written.warehouse else local.warehouse
    warehouse = WarehouseSettings(
        catalog_name=written.catalog_name,
        catalog_type=written.catalog_type,
        catalog_uri=written.catalog_uri or default_uri,
        warehouse=location,
        properties=written.properties,
    )
    return Settings(
        warehouse=warehouse,
        executor=parsed.executor,
        home=root,
        file=file,
        outcomes=parsed.outcomes,
        viewer=parsed.viewer,
        evals=parsed.evals,
        capture=parsed.capture,
        proxy=parsed.proxy,
        otlp=parsed.otlp,
    )
