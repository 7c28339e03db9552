"""Lazily exported package names are the same objects the eager imports gave."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

LAZY_PACKAGES = (
    "posttrain.platform.dedup",
    "posttrain.platform.decontam",
    "posttrain.platform.ingest",
)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_public_name_resolves_to_its_definition(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        assert not isinstance(value, type(module)), f"{package}.{name} is a module"
        assert name in dir(module)


def test_a_function_named_like_its_module_wins_after_that_module_is_imported() -> None:
    code = (
        "import posttrain.platform.ingest.bronze\n"  # imports .source_metadata on the way
        "from posttrain.platform.ingest import source_metadata\n"
        "assert callable(source_metadata) and not hasattr(source_metadata, '__path__')\n"
        "assert type(source_metadata).__name__ == 'function'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_unknown_name_is_an_attribute_error() -> None:
    dedup = importlib.import_module("posttrain.platform.dedup")
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        dedup.nothing_here  # noqa: B018
