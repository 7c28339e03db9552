"""Benchmark solutions leaked without their prompt, and clean code, to measure code-aware
decontamination (``tests/platform/decontam/test_code_leaks.py``, ``bench/decontam_quality.py
--code``).

A *solution-only leak* of a HumanEval problem is its canonical solution under the
problem's signature with the function renamed (``renamed_function``), and also with every
parameter and local variable renamed (``renamed_variables``): no docstring, no prompt text.
The clean side is real code that cannot contain HumanEval: the source of every function of
a list of standard-library modules, read with :mod:`inspect`.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import re
import textwrap
import tokenize
from collections.abc import Iterator, Mapping

# Pure-Python standard-library modules of varied style (text, numbers, data structures,
# parsing, I/O), none of which quotes HumanEval.
STDLIB_MODULES = (
    "argparse", "ast", "base64", "bisect", "calendar", "colorsys", "configparser",
    "csv", "dataclasses", "datetime", "difflib", "email.utils", "enum", "fractions",
    "ftplib", "functools", "getopt", "gettext", "glob", "gzip", "heapq", "html",
    "http.cookies", "imaplib", "inspect", "ipaddress", "json.decoder", "json.encoder",
    "locale", "logging", "mailbox", "mimetypes", "ntpath", "numbers", "operator",
    "optparse", "pathlib", "pickletools", "platform", "plistlib", "posixpath", "pprint",
    "quopri", "random", "re._parser", "reprlib", "shlex", "shutil", "smtplib",
    "statistics", "string", "subprocess", "tarfile", "textwrap", "tokenize",
    "traceback", "typing", "urllib.parse", "uuid", "warnings", "wave", "zipfile",
)  # fmt: skip
_NEW_NAMES = ("val", "item", "acc", "res", "tmp", "cur", "buf", "node", "elem", "key")


def _signature(prompt: str, entry_point: str) -> str:
    found = re.search(rf"def {re.escape(entry_point)}\((.*?)\)[^:\n]*:", prompt, flags=re.S)
    return found.group(0) if found else f"def {entry_point}(*args):"


def _bound_names(tree: ast.AST) -> list[str]:
    """Parameters and names the code assigns, in order of first appearance."""
    names: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            names[node.arg] = None
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names[node.id] = None
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names[node.name] = None
    return list(names)


def rename_identifiers(code: str, names: Mapping[str, str]) -> str:
    """``code`` with every name token in ``names`` renamed, except attributes (``x.name``)."""
    out: list[tuple[int, str]] = []
    previous = ""
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        text = token.string
        if token.type == tokenize.NAME and text in names and previous != ".":
            text = names[text]
        out.append((token.type, text))
        if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT):
            previous = token.string
    return tokenize.untokenize(out)


def solution_leaks(problem: Mapping[str, str]) -> dict[str, str]:
    """The two solution-only leaks of one HumanEval problem, by variant name."""
    header = _signature(problem["prompt"], problem["entry_point"])
    function = header + "\n" + problem["canonical_solution"]
    renamed = {problem["entry_point"]: "solve"}
    leaks = {"renamed_function": rename_identifiers(function, renamed)}
    try:
        bound = _bound_names(ast.parse(function))
    except SyntaxError:
        bound = []
    for k, name in enumerate(n for n in bound if n != problem["entry_point"]):
        renamed[name] = f"{_NEW_NAMES[k % len(_NEW_NAMES)]}{k}"
    leaks["renamed_variables"] = rename_identifiers(function, renamed)
    return leaks


def stdlib_functions(modules: tuple[str, ...] = STDLIB_MODULES) -> Iterator[tuple[str, str]]:
    """``(qualified name, source)`` of every function and method defined in ``modules``."""
    seen: set[str] = set()
    for module_name in modules:
        module = importlib.import_module(module_name)
        for _, value in inspect.getmembers(module):
            candidates = [value]
            if inspect.isclass(value):
                candidates = [member for _, member in inspect.getmembers(value)]
            for function in candidates:
                if not inspect.isfunction(function) or function.__module__ != module.__name__:
                    continue
                name = f"{function.__module__}.{function.__qualname__}"
                if name in seen:
                    continue
                seen.add(name)
                try:
                    source = textwrap.dedent(inspect.getsource(function))
                except (OSError, TypeError):
                    continue
                yield name, source
