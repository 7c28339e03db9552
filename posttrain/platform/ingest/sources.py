"""What to ingest: one :class:`SourceSpec` per input, loaded from a sources YAML file.

A sources file lists the inputs of a deployment (the demo's is ``data/sources.yaml``)::

    sources:
      - path: data/samples/stdlib_docs_qa.jsonl   # a file, or a folder (searched recursively)
        source: stdlib-docs-qa                     # unique name, stored on every row
        workspace: public                          # default: "default"
        license: PSF-2.0                           # default: "unknown"
        description: Q&A from stdlib docstrings    # optional
        format: alpaca                             # optional; detected when omitted

Relative paths are relative to ``base_dir`` (the project root by default), so the file
means the same thing whatever the working directory. The whole file is validated before
anything is ingested; every problem is a :class:`ConfigError` naming the file and entry.

Workspace, license and description are the source's metadata: ingest records them once per
source in ``lineage.sources`` (see :mod:`posttrain.platform.ingest.source_metadata`), where
``posttrain sources set`` corrects them without re-ingesting. Values left at their defaults
never overwrite what is recorded there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from posttrain.platform.config import FrozenConfig
from posttrain.platform.errors import ConfigError
from posttrain.platform.ingest.folders import FolderScan, scan_inputs
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.ingest.readers import INPUT_PATTERNS
from posttrain.platform.settings import project_root

SOURCE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class SourceSpec(FrozenConfig):
    """One input: a file or folder, the source it belongs to and how it may be used."""

    path: Path
    source: str = Field(pattern=SOURCE_NAME_PATTERN, max_length=128)
    workspace: str = Field(default="default", min_length=1)
    license: str = Field(default="unknown", min_length=1)
    description: str = ""
    format: ChatFormat | None = None

    def scan(self) -> FolderScan:
        """The files this spec names (the path itself, or a folder's inputs) and the files
        of its folder that are skipped, with why."""
        return scan_inputs(self.path)

    def files(self) -> list[Path]:
        """The files this spec names: the path itself, or a folder's inputs, sorted."""
        return [f.path for f in self.scan().files]


def _entry_label(index: int, entry: Any) -> str:
    name = entry.get("source") if isinstance(entry, dict) else None
    return f"entry {index}" + (f" (source {name!r})" if isinstance(name, str) else "")


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "entry"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


def _spec(entry: Any, base_dir: Path) -> SourceSpec:
    if not isinstance(entry, dict):
        raise ValueError(
            f"expected a mapping with 'path' and 'source', found {type(entry).__name__}"
        )
    try:
        spec = SourceSpec.model_validate(entry)
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from None
    path = spec.path if spec.path.is_absolute() else base_dir / spec.path
    if not path.exists():
        raise ValueError(f"path {str(spec.path)!r} does not exist (looked in {base_dir})")
    resolved = spec.model_copy(update={"path": path.resolve()})
    if not resolved.files():
        raise ValueError(f"folder {str(spec.path)!r} holds no input files ({INPUT_PATTERNS})")
    return resolved


def _read_entries(path: Path) -> list[Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the sources file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    entries = document.get("sources") if isinstance(document, dict) else document
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: expected a non-empty 'sources:' list of entries")
    return entries


def validate_specs(specs: list[SourceSpec], origin: str) -> None:
    """Refuse two specs with the same source name or the same path; ``origin`` names them."""
    seen_sources: dict[str, int] = {}
    seen_paths: dict[Path, int] = {}
    for index, spec in enumerate(specs, start=1):
        if spec.source in seen_sources:
            raise ConfigError(
                f"{origin}, entry {index}: source {spec.source!r} is already used by entry "
                f"{seen_sources[spec.source]}; give each source one entry (a folder path "
                "ingests several files)"
            )
        if spec.path in seen_paths:
            raise ConfigError(
                f"{origin}, entry {index}: path {str(spec.path)!r} is already listed by entry "
                f"{seen_paths[spec.path]}"
            )
        seen_sources[spec.source] = index
        seen_paths[spec.path] = index


def load_sources(path: str | Path, *, base_dir: str | Path | None = None) -> list[SourceSpec]:
    """Load and validate a sources YAML file; paths in it become absolute.

    Args:
        path: the YAML file.
        base_dir: what relative paths are relative to; the project root by default.

    Raises:
        ConfigError: naming the file and the entry, e.g. ``data/sources.yaml, entry 2
            (source 'math'): format: Input should be 'openai', 'sharegpt', ...``.

    Example:
        >>> [s.source for s in load_sources("data/sources.yaml")][:1]  # doctest: +SKIP
        ['stdlib-docs-qa']
    """
    path = Path(path)
    base = Path(base_dir) if base_dir is not None else project_root()
    specs = []
    for index, entry in enumerate(_read_entries(path), start=1):
        try:
            specs.append(_spec(entry, base))
        except ValueError as exc:
            raise ConfigError(f"{path}, {_entry_label(index, entry)}: {exc}") from None
    validate_specs(specs, str(path))
    return specs
