"""Real text from the Python standard library: docstrings for Q&A, function sources for code.

Objects are split in two disjoint pools so the two sources never share a docstring:
pure-Python functions whose source is short enough become coding tasks (the docstring is
the task, the source the solution); everything else with a substantial docstring becomes
a Q&A item (Alpaca). The text depends on the Python version, which the manifest records.
"""

from __future__ import annotations

import importlib
import inspect
import random
import textwrap
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sample_data.model import Conversation, msg
from sample_data.pii import found_pii

MODULES = (
    "builtins",
    "math",
    "cmath",
    "itertools",
    "operator",
    "functools",
    "collections",
    "re",
    "string",
    "textwrap",
    "json",
    "os",
    "os.path",
    "pathlib",
    "shutil",
    "glob",
    "fnmatch",
    "datetime",
    "time",
    "calendar",
    "random",
    "statistics",
    "decimal",
    "fractions",
    "heapq",
    "bisect",
    "array",
    "struct",
    "zlib",
    "binascii",
    "base64",
    "hashlib",
    "hmac",
    "secrets",
    "uuid",
    "csv",
    "io",
    "tempfile",
    "sys",
    "subprocess",
    "threading",
    "queue",
    "logging",
    "argparse",
    "typing",
    "dataclasses",
    "enum",
    "contextlib",
    "copy",
    "pprint",
    "difflib",
    "html",
    "urllib.parse",
    "unicodedata",
    "sqlite3",
    "socket",
    "select",
    "weakref",
    "types",
    "inspect",
    "traceback",
    "warnings",
    "abc",
    "concurrent.futures",
    "zipfile",
    "tarfile",
    "gzip",
    "bz2",
    "lzma",
    "configparser",
    "ipaddress",
    "mimetypes",
    "locale",
    "codecs",
    "ast",
    "dis",
    "timeit",
    "doctest",
    "unittest",
    "xml.etree.ElementTree",
    "http.client",
    "urllib.request",
    "optparse",
    "cmd",
    "sched",
    "selectors",
    "socketserver",
    "pkgutil",
    "asyncio",
    "linecache",
    "tokenize",
    "quopri",
    "getopt",
    "plistlib",
    "bdb",
    "colorsys",
)
MIN_QA_WORDS = 14
MIN_CODE_WORDS = 12
CODE_LINES = (3, 90)


@dataclass(frozen=True)
class DocItem:
    """A documented stdlib object."""

    module: str
    qualname: str  # as a user writes it: "str.split", "os.path.join", "json.dumps"
    name: str
    kind: str  # function, class or method
    signature: str  # "(sep=None, maxsplit=-1)", or "" when unknown
    doc: str
    source: str | None  # dedented source for the code pool, else None


class _Shown:
    """A default value shown by name, so no memory address (``<object at 0x...>``) leaks in."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _readable(param: inspect.Parameter) -> inspect.Parameter:
    default = param.default
    if default is inspect.Parameter.empty or " at 0x" not in repr(default):
        return param
    return param.replace(default=_Shown(getattr(default, "__name__", "...")))


def _signature(obj: Any) -> str:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return ""
    params = [_readable(p) for p in sig.parameters.values() if p.name not in ("self", "cls")]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def _code_source(obj: Any) -> str | None:
    if not inspect.isfunction(obj):
        return None
    try:
        source = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        return None
    lines = source.count("\n")
    return source if CODE_LINES[0] <= lines <= CODE_LINES[1] else None


def _members(module: Any) -> Iterator[tuple[str, str, Any]]:
    """``(qualname, kind, object)`` for public objects defined in ``module``, sorted."""
    prefix = "" if module.__name__ == "builtins" else module.__name__ + "."
    home = {module.__name__, "_" + module.__name__, "posixpath", "posix", "builtins"}
    for name in sorted(dir(module)):
        obj = getattr(module, name, None)
        if name.startswith("_") or getattr(obj, "__module__", None) not in home:
            continue
        if inspect.isclass(obj):
            yield prefix + name, "class", obj
            for attr in sorted(vars(obj)):
                if not attr.startswith("_") and callable(getattr(obj, attr, None)):
                    yield f"{prefix}{name}.{attr}", "method", getattr(obj, attr)
        elif callable(obj):
            yield prefix + name, "function", obj


def harvest() -> tuple[list[DocItem], list[DocItem]]:
    """Q&A items and code items from :data:`MODULES`, each docstring used once."""
    seen_docs: set[str] = set()
    qa: list[DocItem] = []
    code: list[DocItem] = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        with warnings.catch_warnings():
            # Enumerating a module touches its deprecated aliases too (typing.io, ...).
            warnings.simplefilter("ignore", DeprecationWarning)
            members = list(_members(module))
        for qualname, kind, obj in members:
            own = (
                obj.__dict__.get("__doc__")
                if isinstance(obj, type)
                else getattr(obj, "__doc__", None)
            )
            if not isinstance(own, str):
                continue
            doc = inspect.cleandoc(own)
            key = " ".join(doc.split())
            if key in seen_docs or found_pii(doc) or ">>>" in doc:
                continue
            source = _code_source(obj)
            if source is not None and found_pii(source):
                continue
            words = len(doc.split())
            item = DocItem(
                module_name,
                qualname,
                qualname.rsplit(".", 1)[-1],
                kind,
                _signature(obj),
                doc,
                source,
            )
            if source is not None and words >= MIN_CODE_WORDS:
                code.append(item)
            elif source is None and MIN_QA_WORDS <= words <= 500:
                qa.append(item)
            else:
                continue
            seen_docs.add(key)
    return qa, code


# -- Q&A (Alpaca) -----------------------------------------------------------------------

QA_QUESTIONS = [
    "What does `{q}` do?",
    "Explain what `{q}` is used for in Python.",
    "How does `{q}` work? Describe its arguments and what it returns.",
    "I came across `{q}` in a code review. Can you explain it?",
    "Describe the {kind} `{q}` from Python's `{m}` module.",
    "Give me a short explanation of `{q}`.",
    "When would I use `{q}`?",
]


def _access(item: DocItem) -> str:
    if item.module == "builtins":
        return "It is a built-in, so no import is needed."
    top = item.qualname.removeprefix(item.module + ".").split(".")[0]
    return f"Import it with `from {item.module} import {top}`."


def qa_conversation(item: DocItem, rng: random.Random) -> tuple[Conversation, str]:
    """A question about ``item``, answered from its docstring; also the Alpaca input."""
    question = rng.choice(QA_QUESTIONS).format(
        q=item.qualname, n=item.name, kind=item.kind, m=item.module
    )
    call = f"{item.qualname}{item.signature}"
    paragraphs = item.doc.split("\n\n")
    style = rng.randrange(4)
    if style == 0:
        answer = f"`{call}` is a {item.kind} in the `{item.module}` module.\n\n{item.doc}"
    elif style == 1:
        answer = (
            f"From the Python documentation for `{item.qualname}`:\n\n{item.doc}\n\n{_access(item)}"
        )
    elif style == 2 and len(paragraphs) > 1:
        answer = f"In short: {paragraphs[0]}\n\nIn more detail:\n\n" + "\n\n".join(paragraphs[1:])
    else:
        answer = f"{item.doc}\n\nSignature: `{call}`. {_access(item)}"
    roll = rng.random()
    if roll < 0.2 and item.signature:
        extra = f"Signature: {item.name}{item.signature}"
    elif roll < 0.3:
        extra = "I'm using Python 3.11."
    else:
        extra = ""
    user = f"{question}\n\n{extra}" if extra else question
    return [msg("user", user), msg("assistant", answer)], extra


# -- coding tasks (prompt/completion) -------------------------------------------------------


def code_conversation(item: DocItem, rng: random.Random) -> Conversation:
    """A task to implement ``item`` from its docstring, solved by its real source."""
    assert item.source is not None
    owner = item.qualname.removeprefix(item.module + ".").rsplit(".", 1)
    doc_block = textwrap.indent(f'"""{item.doc}\n"""', "    ")
    style = (
        2 if item.kind == "method" and len(owner) == 2 and rng.random() < 0.7 else rng.randrange(4)
    )
    if style == 0:
        prompt = f"Write a Python function `{item.name}{item.signature}`.\n\n{item.doc}"
    elif style == 1:
        prompt = (
            "Implement the following function in Python:\n\n```python\ndef "
            f"{item.name}{item.signature}:\n{doc_block}\n```"
        )
    elif style == 2 and item.kind == "method" and len(owner) == 2:
        prompt = (
            f"Implement the `{item.name}{item.signature}` method of a `{owner[0]}` class "
            f"in Python.\n\n{item.doc}"
        )
    else:
        prompt = f"{item.doc}\n\nImplement this as `{item.name}{item.signature}` in Python."
    intro = rng.choice(
        [
            "",
            f"Here is an implementation, as in the standard library's `{item.module}` module:\n\n",
            "This implementation handles the cases described in the docstring:\n\n",
        ]
    )
    return [msg("user", prompt), msg("assistant", f"{intro}```python\n{item.source}```")]
