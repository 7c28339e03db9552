"""Loading sources.yaml into validated SourceSpecs; every problem names the file and entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from posttrain.platform.errors import ConfigError
from posttrain.platform.ingest.formats import ChatFormat
from posttrain.platform.ingest.sources import SourceSpec, load_sources


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    (tmp_path / "samples").mkdir()
    for name in ("b.jsonl", "a.parquet", "notes.txt"):
        (tmp_path / "samples" / name).write_text("{}\n")
    return tmp_path


def write_yaml(root: Path, text: str) -> Path:
    path = root / "sources.yaml"
    path.write_text(text)
    return path


def test_entries_become_specs_with_paths_resolved_against_base_dir(inputs: Path) -> None:
    path = write_yaml(
        inputs,
        """
sources:
  - path: samples/b.jsonl
    source: docs-qa
    license: PSF-2.0
    format: alpaca
  - path: samples
    source: everything
""",
    )
    specs = load_sources(path, base_dir=inputs)
    assert specs[0] == SourceSpec(
        path=inputs / "samples" / "b.jsonl",
        source="docs-qa",
        license="PSF-2.0",
        format=ChatFormat.ALPACA,
    )
    assert (specs[1].workspace, specs[1].license, specs[1].format) == ("default", "unknown", None)


def test_a_folder_spec_names_its_inputs_in_order(inputs: Path) -> None:
    spec = SourceSpec(path=inputs / "samples", source="all")
    assert [p.name for p in spec.files()] == ["a.parquet", "b.jsonl"]


def test_missing_path_key_names_file_and_entry(inputs: Path) -> None:
    path = write_yaml(inputs, "sources:\n  - source: qa\n")
    with pytest.raises(
        ConfigError, match=r"sources\.yaml, entry 1 \(source 'qa'\): path: Field required"
    ):
        load_sources(path, base_dir=inputs)


def test_path_that_does_not_exist_is_named(inputs: Path) -> None:
    path = write_yaml(
        inputs,
        "sources:\n  - {path: samples/b.jsonl, source: a}\n  - {path: gone.jsonl, source: b}\n",
    )
    with pytest.raises(
        ConfigError, match=r"entry 2 \(source 'b'\): path 'gone\.jsonl' does not exist"
    ):
        load_sources(path, base_dir=inputs)


def test_unknown_format_lists_the_known_ones(inputs: Path) -> None:
    path = write_yaml(inputs, "sources:\n  - {path: samples/b.jsonl, source: qa, format: csv}\n")
    with pytest.raises(ConfigError) as caught:
        load_sources(path, base_dir=inputs)
    assert "entry 1 (source 'qa'): format: Input should be 'openai', 'sharegpt', 'alpaca'" in str(
        caught.value
    )


def test_misspelled_key_is_refused(inputs: Path) -> None:
    path = write_yaml(inputs, "sources:\n  - {path: samples/b.jsonl, source: qa, licence: MIT}\n")
    with pytest.raises(ConfigError, match="licence: Extra inputs are not permitted"):
        load_sources(path, base_dir=inputs)


def test_bad_source_name_is_refused(inputs: Path) -> None:
    path = write_yaml(inputs, "sources:\n  - {path: samples/b.jsonl, source: 'my source!'}\n")
    with pytest.raises(
        ConfigError, match="entry 1 \\(source 'my source!'\\): source: String should match"
    ):
        load_sources(path, base_dir=inputs)


def test_duplicate_source_names_are_refused(inputs: Path) -> None:
    path = write_yaml(
        inputs,
        "sources:\n"
        "  - {path: samples/b.jsonl, source: qa}\n"
        "  - {path: samples/a.parquet, source: qa}\n",
    )
    with pytest.raises(ConfigError, match="entry 2: source 'qa' is already used by entry 1"):
        load_sources(path, base_dir=inputs)


def test_the_same_path_twice_is_refused(inputs: Path) -> None:
    path = write_yaml(
        inputs,
        "sources:\n  - {path: samples/b.jsonl, source: a}\n  - {path: samples/b.jsonl, source: b}",
    )
    with pytest.raises(ConfigError, match=r"entry 2: path .* is already listed by entry 1"):
        load_sources(path, base_dir=inputs)


def test_folder_without_inputs_is_refused(inputs: Path) -> None:
    (inputs / "empty").mkdir()
    path = write_yaml(inputs, "sources:\n  - {path: empty, source: a}\n")
    with pytest.raises(ConfigError, match="folder 'empty' holds no"):
        load_sources(path, base_dir=inputs)


@pytest.mark.parametrize("text", ["sources: []\n", "just text\n", "sources:\n  - [a, b]\n"])
def test_wrong_shapes_are_refused(inputs: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=r"sources\.yaml"):
        load_sources(write_yaml(inputs, text), base_dir=inputs)


def test_invalid_yaml_names_the_file(inputs: Path) -> None:
    with pytest.raises(ConfigError, match=r"sources\.yaml: not valid YAML"):
        load_sources(write_yaml(inputs, "sources:\n  - {path: [\n"), base_dir=inputs)


def test_missing_sources_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the sources file"):
        load_sources(tmp_path / "nope.yaml")
