"""Which files of a folder are inputs, which are skipped and why, and each file's split.

A folder is searched recursively, in path order. A file is an input when its name ends in
one of :data:`~posttrain.platform.ingest.readers.INPUT_PATTERNS`; anything else is skipped
with a reason the ingest report shows: hidden files and folders (``.git``, ``.cache``),
Hugging Face ``datasets`` metadata (``dataset_info.json``, ``state.json``,
``dataset_dict.json``), empty files and other extensions.

Hugging Face ``datasets`` folders keep their split as a column:

* ``save_to_disk`` of a ``DatasetDict``: ``<split>/data-00000-of-00001.arrow`` beside a
  ``dataset_dict.json``; of a single ``Dataset``: the split its ``state.json`` names;
* the hub layout: ``data/<split>-00000-of-00002.parquet`` (any ``<split>-NNNNN-of-NNNNN``
  shard name, anywhere under the folder) and any file directly in a ``data`` folder,
  named ``<split>-...`` or ``<split>.<ext>``.

Each input also gets the name its record ids hash: its path relative to the folder, so
moving the whole folder keeps the ids, and ``train/data-00000-of-00001.arrow`` and
``test/data-00000-of-00001.arrow`` stay two files.

Example:
    >>> scan = scan_inputs(Path("hub_dataset"))  # doctest: +SKIP
    >>> [(f.name, f.split) for f in scan.files]  # doctest: +SKIP
    [('data/test-00000-of-00001.parquet', 'test'), ('data/train-00000-of-00001.parquet', 'train')]
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from posttrain.platform.errors import InputFormatError
from posttrain.platform.ingest.readers import INPUT_PATTERNS, file_type

HF_METADATA = frozenset({"dataset_info.json", "state.json", "dataset_dict.json"})
_SHARD = re.compile(r"^(?P<split>[A-Za-z0-9_]+?)-\d{5}-of-\d{5}\b")
_HUB_DATA_FILE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)[-.]")


@dataclass(frozen=True)
class InputFile:
    """One file to ingest: where it is, the name its record ids hash, and its split."""

    path: Path
    name: str
    split: str | None = None


@dataclass(frozen=True)
class SkippedFile:
    """A file (or hidden folder) under an input folder that is not ingested, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class FolderScan:
    """The inputs found under a path and what was skipped."""

    files: list[InputFile]
    skipped: list[SkippedFile] = field(default_factory=list)


def _state(folder: Path) -> dict[str, Any]:
    """The ``state.json`` that ``save_to_disk`` writes beside its Arrow files ({} if none)."""
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _state_split(folder: Path) -> str | None:
    """The split a ``save_to_disk`` ``state.json`` names (``_split``), if any."""
    split = _state(folder).get("_split")
    return split if isinstance(split, str) and split else None


def _state_data_files(folder: Path) -> set[str] | None:
    """The Arrow files a ``state.json`` lists as the dataset's data (``None``: no list)."""
    files = _state(folder).get("_data_files")
    if not isinstance(files, list):
        return None
    return {f["filename"] for f in files if isinstance(f, dict) and "filename" in f}


def split_of(path: Path, root: Path) -> str | None:
    """The Hugging Face split of ``path`` (under ``root``), or ``None`` outside those layouts."""
    folder = path.parent
    if path.suffix.lower() == ".arrow" and (folder / "state.json").is_file():
        in_dict = folder != root and (folder.parent / "dataset_dict.json").is_file()
        return folder.name if in_dict else _state_split(folder)
    if shard := _SHARD.match(path.name):
        return shard["split"]
    if folder.name == "data" and (hub := _HUB_DATA_FILE.match(path.name)):
        return hub["split"]
    return None


def _skip_reason(path: Path) -> str | None:
    if path.name in HF_METADATA:
        return "Hugging Face datasets metadata, not records"
    if path.suffix.lower() == ".arrow":
        listed = _state_data_files(path.parent)
        if listed is not None and path.name not in listed:
            return "not one of the data files its state.json lists (a datasets cache file)"
    try:
        file_type(path)
    except InputFormatError:
        return f"not an input file (expected a name ending in one of {INPUT_PATTERNS})"
    if path.stat().st_size == 0:
        return "empty file"
    return None


def scan_inputs(path: Path) -> FolderScan:
    """The input files under ``path`` (recursively, sorted) and the files skipped there.

    A file path is its own single input (named by its base name, no split), whatever its
    extension: reading it says whether it is one.
    """
    if not path.is_dir():
        return FolderScan([InputFile(path, path.name)])
    files: list[InputFile] = []
    skipped: list[SkippedFile] = []
    pending = [path]
    while pending:
        folder = pending.pop()
        for entry in sorted(folder.iterdir(), reverse=True):
            if entry.name.startswith("."):
                skipped.append(SkippedFile(entry, "hidden"))
            elif entry.is_dir():
                pending.append(entry)
            elif not entry.is_file():
                skipped.append(SkippedFile(entry, "not a regular file"))
            elif reason := _skip_reason(entry):
                skipped.append(SkippedFile(entry, reason))
            else:
                name = entry.relative_to(path).as_posix()
                files.append(InputFile(entry, name, split_of(entry, path)))
    return FolderScan(
        sorted(files, key=lambda f: f.name), sorted(skipped, key=lambda s: s.path.as_posix())
    )
