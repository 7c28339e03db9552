"""Real text that ships on every machine of this project: the files of the pinned packages.

The labelled near-duplicate set (``scripts/make_near_dup_set.py``) and the dedup benchmarks
(``bench/dedup.py``, ``bench/dedup_backends.py``) need real prose and code without
downloading a dataset. The project's virtualenv holds ~320 MB of Python source from the
versions pinned in ``requirements.lock``: docstrings are English prose, the rest is code,
and the same pins give the same bytes on every machine.

Files are visited in an order fixed by a hash of their relative path (so a sample mixes
packages instead of reading them alphabetically), and every random choice takes a seeded
:class:`random.Random`, so the same venv always yields the same documents.
"""

from __future__ import annotations

import ast
import random
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import xxhash

PROSE_SUFFIXES = (".md", ".rst", ".txt")
SKIPPED_PARTS = frozenset({"__pycache__", "__editable__"})


@dataclass(frozen=True)
class SourceText:
    """A piece of real text and where it came from (``path`` relative to site-packages)."""

    path: str
    text: str

    @property
    def package(self) -> str:
        return self.path.split("/", 1)[0]


def site_packages() -> Path:
    """The ``site-packages`` folder of the running interpreter (the project venv)."""
    return Path(sysconfig.get_paths()["purelib"])


def _keep(relative: Path) -> bool:
    return not any(
        part in SKIPPED_PARTS or part.startswith("__editable__") for part in relative.parts
    )


def iter_files(suffixes: tuple[str, ...], root: Path | None = None) -> Iterator[Path]:
    """Files under ``root`` ending in one of ``suffixes``, in a fixed hash-of-path order."""
    base = root or site_packages()
    found = [path for path in base.rglob("*") if path.suffix in suffixes or path.name in suffixes]
    relative = [path.relative_to(base) for path in found if path.is_file()]
    kept = [path for path in relative if _keep(path)]
    kept.sort(key=lambda path: (xxhash.xxh64_intdigest(path.as_posix().encode()), path.as_posix()))
    for path in kept:
        yield base / path


def read_text(path: Path) -> str:
    """The file as text; undecodable bytes become U+FFFD instead of failing."""
    return path.read_text(encoding="utf-8", errors="replace")


def chunk_lines(text: str, rng: random.Random, min_chars: int, max_chars: int) -> list[str]:
    """Split ``text`` at line ends into pieces of a random size in ``[min_chars, max_chars]``.

    A final piece shorter than ``min_chars`` is dropped, so every piece is a realistic
    document rather than a file's last three lines.
    """
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    target = rng.randint(min_chars, max_chars)
    for line in text.splitlines(keepends=True):
        current.append(line)
        size += len(line)
        if size >= target:
            pieces.append("".join(current))
            current, size, target = [], 0, rng.randint(min_chars, max_chars)
    if size >= min_chars:
        pieces.append("".join(current))
    return pieces


def iter_code_chunks(
    rng: random.Random, min_chars: int = 1000, max_chars: int = 8000
) -> Iterator[SourceText]:
    """Python source files of the venv, cut into documents of ``min_chars``–``max_chars``."""
    root = site_packages()
    for path in iter_files((".py",), root):
        relative = path.relative_to(root).as_posix()
        for piece in chunk_lines(read_text(path), rng, min_chars, max_chars):
            yield SourceText(relative, piece)


def iter_docstrings(min_chars: int = 400) -> Iterator[SourceText]:
    """Docstrings (English prose) of the venv's modules, classes and functions."""
    root = site_packages()
    for path in iter_files((".py",), root):
        try:
            tree = ast.parse(read_text(path))
        except (SyntaxError, ValueError):
            continue  # a few vendored files target other Python versions
        relative = path.relative_to(root).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= min_chars:
                    yield SourceText(relative, doc)


def iter_prose_files(min_chars: int = 400) -> Iterator[SourceText]:
    """Package descriptions (``METADATA``), READMEs and text files of the venv."""
    root = site_packages()
    for path in iter_files((*PROSE_SUFFIXES, "METADATA"), root):
        text = read_text(path)
        if len(text) >= min_chars:
            yield SourceText(path.relative_to(root).as_posix(), text)
