"""A catalog of common Python mistakes: the buggy snippet, why it fails and the fix.

Each entry draws names and values from the seeded generator; :func:`error_line` executes
the snippet and returns the exception line Python prints, so the error text is real.
"""

from __future__ import annotations

import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar


@dataclass(frozen=True)
class Bug:
    code: str
    explanation: str
    fix: str


T = TypeVar("T")


def _pick(rng: random.Random, options: list[T]) -> T:
    return rng.choice(options)


def int_parse(r: random.Random) -> Bug:
    var, raw = (
        _pick(r, ["age", "quantity", "port", "count", "year", "retries"]),
        _pick(r, ["12a", "3.5", "42 kg", "1,000", "seven"]),
    )
    return Bug(
        f"{var} = int({raw!r})",
        "`int()` only accepts a string of digits (with an optional sign and surrounding "
        f"whitespace). {raw!r} contains other characters, so the conversion fails.",
        f"cleaned = {raw!r}.replace(',', '').split()[0]\n{var} = int(float(cleaned)) if "
        "cleaned.replace('.', '', 1).isdigit() else None",
    )


def key_error(r: random.Random) -> Bug:
    name, key = (
        _pick(r, ["config", "settings", "row", "payload", "headers", "options"]),
        _pick(r, ["timeout", "user_id", "region", "api_version", "retries"]),
    )
    present = ", ".join(f'"{k}": {v}' for k, v in [("host", '"localhost"'), ("debug", "True")])
    return Bug(
        f"{name} = {{{present}}}\nvalue = {name}[{key!r}]",
        f"Indexing a dict with `[]` raises `KeyError` when the key is missing; `{name}` has "
        f"no {key!r} key.",
        f"value = {name}.get({key!r}, 30)  # a default instead of an exception\n# or: if "
        f"{key!r} in {name}: ...",
    )


def index_error(r: random.Random) -> Bug:
    n = r.randint(2, 6)
    name = _pick(r, ["items", "scores", "lines", "results", "users"])
    return Bug(
        f"{name} = list(range({n}))\nlast = {name}[{n}]",
        f"List indices start at 0, so a list of {n} elements has indices 0 to {n - 1}; index "
        f"{n} is one past the end.",
        f"last = {name}[-1]  # or {name}[len({name}) - 1]",
    )


def none_attribute(r: random.Random) -> Bug:
    text, pattern = (
        _pick(r, ["order: none", "abc", "total=", "id: x7"]),
        _pick(r, [r"\d+", r"[0-9]{3}", r"\d+\.\d+"]),
    )
    return Bug(
        f"import re\nnumber = re.match(r'{pattern}', {text!r}).group()",
        "`re.match` returns `None` when the pattern does not match at the start of the "
        "string, and `None` has no `.group()` method.",
        f"match = re.search(r'{pattern}', {text!r})\nnumber = match.group() if match else None",
    )


def str_concat(r: random.Random) -> Bug:
    var, label = (
        _pick(r, ["total", "count", "n_rows", "elapsed"]),
        _pick(r, ["Total: ", "Rows processed: ", "Count = ", "Elapsed seconds: "]),
    )
    return Bug(
        f"{var} = {r.randint(2, 900)}\nprint({label!r} + {var})",
        "`+` between a `str` and an `int` is not defined in Python; it does not convert "
        "numbers to text implicitly.",
        f"print(f{label + '{' + var + '}'!r})",
    )


def json_quotes(r: random.Random) -> Bug:
    key, value = (
        _pick(r, ["name", "city", "status", "role"]),
        _pick(r, ["Ada", "Lima", "active", "admin"]),
    )
    return Bug(
        f"import json\ndata = json.loads(\"{{'{key}': '{value}'}}\")",
        "JSON requires double quotes around keys and strings. The text uses single quotes, "
        "which is a Python literal, not JSON.",
        f'data = json.loads(\'{{"{key}": "{value}"}}\')\n# if the text really is a Python '
        "literal: ast.literal_eval(text)",
    )


def file_not_found(r: random.Random) -> Bug:
    path = _pick(
        r, ["data/input.csv", "config/settings.yaml", "reports/2024-05.json", "assets/logo.png"]
    )
    return Bug(
        f"with open({path!r}) as handle:\n    content = handle.read()",
        "A relative path is resolved against the current working directory, not the script's "
        "folder, so the file is not found when the script runs from elsewhere.",
        f"from pathlib import Path\npath = Path(__file__).parent / {path!r}\ncontent = "
        "path.read_text()",
    )


def module_not_found(r: random.Random) -> Bug:
    name, right = _pick(
        r,
        [
            ("reqeusts", "requests"),
            ("numppy", "numpy"),
            ("pandsa", "pandas"),
            ("beautifulsoup", "bs4"),
            ("yml", "yaml"),
        ],
    )
    return Bug(
        f"import {name}",
        f"There is no module called `{name}` on the import path. It is most likely a typo "
        f"for `{right}` (installed with pip if missing).",
        f"import {right}  # pip install "
        f"{'beautifulsoup4' if right == 'bs4' else 'pyyaml' if right == 'yaml' else right}",
    )


def zero_division(r: random.Random) -> Bug:
    name = _pick(r, ["latencies", "prices", "ratings", "durations"])
    return Bug(
        f"{name} = []\naverage = sum({name}) / len({name})",
        f"`{name}` is empty, so `len({name})` is 0 and the division raises `ZeroDivisionError`.",
        f"average = sum({name}) / len({name}) if {name} else 0.0",
    )


def strptime_format(r: random.Random) -> Bug:
    day, month, year = r.randint(13, 28), r.randint(1, 12), r.randint(2019, 2024)
    text = f"{month:02d}/{day:02d}/{year}"
    return Bug(
        f"from datetime import datetime\nwhen = datetime.strptime({text!r}, '%d/%m/%Y')",
        f"The string is month/day/year, but the format says day/month/year, so {day} is read "
        "as a month, which cannot exist.",
        f"when = datetime.strptime({text!r}, '%m/%d/%Y')",
    )


def list_remove(r: random.Random) -> Bug:
    items, missing = (
        r.sample(["red", "green", "blue", "cyan", "amber"], 3),
        _pick(r, ["purple", "black", "white"]),
    )
    return Bug(
        f"colors = {items}\ncolors.remove({missing!r})",
        "`list.remove` raises `ValueError` when the value is not in the list.",
        f"if {missing!r} in colors:\n    colors.remove({missing!r})",
    )


def dict_changed(r: random.Random) -> Bug:
    name = _pick(r, ["cache", "sessions", "counts", "pending"])
    return Bug(
        f"{name} = {{'a': 0, 'b': 2, 'c': 0}}\nfor key in {name}:\n    if {name}[key] == 0:\n"
        f"        del {name}[key]",
        "Deleting keys from a dict while iterating over it changes its size mid-iteration, "
        "which Python forbids.",
        f"for key in list({name}):\n    if {name}[key] == 0:\n        del {name}[key]\n# or: "
        f"{name} = {{k: v for k, v in {name}.items() if v != 0}}",
    )


def tuple_assign(r: random.Random) -> Bug:
    name = _pick(r, ["point", "rgb", "size", "origin"])
    return Bug(
        f"{name} = ({r.randint(0, 9)}, {r.randint(0, 9)})\n{name}[0] = {r.randint(10, 99)}",
        "Tuples are immutable: their items cannot be reassigned after creation.",
        f"{name} = ({r.randint(10, 99)}, {name}[1])  # build a new tuple\n# or use a list if "
        "it must change in place",
    )


def unexpected_keyword(r: random.Random) -> Bug:
    fn, kw = (
        _pick(r, ["connect", "fetch", "upload", "render"]),
        _pick(r, ["timeout", "retries", "verbose", "encoding"]),
    )
    return Bug(
        f"def {fn}(host, port):\n    return (host, port)\n\n{fn}('example.local', 8080, {kw}=5)",
        f"`{fn}` is defined with only `host` and `port`, so passing `{kw}=` is an error.",
        f"def {fn}(host, port, {kw}=None):\n    ...",
    )


def missing_argument(r: random.Random) -> Bug:
    fn = _pick(r, ["resize", "send", "schedule", "merge"])
    return Bug(
        f"def {fn}(source, target):\n    return source, target\n\n{fn}('a.png')",
        f"`{fn}` needs two positional arguments and only one was given.",
        f"{fn}('a.png', 'b.png')\n# or give target a default: def {fn}(source, target=None)",
    )


def math_domain(r: random.Random) -> Bug:
    n = r.randint(1, 50)
    return Bug(
        f"import math\nroot = math.sqrt(-{n})",
        "`math.sqrt` works on real numbers only, and negative numbers have no real square root.",
        f"import cmath\nroot = cmath.sqrt(-{n})  # {complex(0, n**0.5):.3f}",
    )


def format_index(r: random.Random) -> Bug:
    name = _pick(r, ["Ada", "Linus", "Grace", "Guido"])
    return Bug(
        f"message = '{{}} scored {{}} points'.format({name!r})",
        "The template has two `{}` placeholders but `format` received one argument.",
        f"message = '{{}} scored {{}} points'.format({name!r}, {r.randint(1, 100)})",
    )


def int_none(r: random.Random) -> Bug:
    var = _pick(r, ["PORT", "WORKERS", "MAX_RETRIES", "BATCH_SIZE"])
    return Bug(
        f"import os\n{var.lower()} = int(os.environ.get({var!r}))",
        f"`os.environ.get` returns `None` when `{var}` is not set, and `int(None)` is a "
        "`TypeError`.",
        f"{var.lower()} = int(os.environ.get({var!r}, '8'))",
    )


def regex_group(r: random.Random) -> Bug:
    pattern = _pick(r, [r"(\d+", r"([a-z]+\.txt", r"(?P<id>\w+"])
    return Bug(
        f"import re\nrx = re.compile(r'{pattern}')",
        "The pattern opens a group with `(` that is never closed.",
        f"rx = re.compile(r'{pattern})')",
    )


def base64_padding(r: random.Random) -> Bug:
    token = _pick(r, ["YWJjZA", "aGVsbG8gd29ybGQ", "cG9zdHRyYWluZw", "ZGF0YQ=", "Zm9vYmFyYg"])
    return Bug(
        f"import base64\nraw = base64.b64decode({token!r})",
        "Base64 text must have a length that is a multiple of 4; the `=` padding at the end "
        "was stripped somewhere.",
        f"token = {token!r}\nraw = base64.b64decode(token + '=' * (-len(token) % 4))",
    )


def unicode_encode(r: random.Random) -> Bug:
    word = _pick(r, ["café", "naïve", "Zürich", "São Paulo", "smörgåsbord"])
    return Bug(
        f"data = {word!r}.encode('ascii')",
        "ASCII only covers 128 characters; accented letters need an encoding such as UTF-8.",
        f"data = {word!r}.encode('utf-8')",
    )


def sort_mixed(r: random.Random) -> Bug:
    values = [r.randint(1, 9), str(r.randint(10, 99)), r.randint(1, 9)]
    return Bug(
        f"ordered = sorted({values!r})",
        "The list mixes `int` and `str`, and Python 3 does not define an order between them.",
        f"ordered = sorted({values!r}, key=int)",
    )


def unhashable(r: random.Random) -> Bug:
    return Bug(
        f"seen = {{[{r.randint(0, 9)}, {r.randint(0, 9)}]}}",
        "Set elements and dict keys must be hashable; lists are mutable and therefore unhashable.",
        f"seen = {{({r.randint(0, 9)}, {r.randint(0, 9)})}}  # tuples are hashable",
    )


def not_iterable(r: random.Random) -> Bug:
    name = _pick(r, ["rows", "files", "tasks", "pages"])
    return Bug(
        f"{name} = ['a', 'b', 'c']\nfor i in len({name}):\n    print(i, {name}[i])",
        "`len()` returns an integer, and an integer cannot be looped over.",
        f"for i, item in enumerate({name}):\n    print(i, item)",
    )


def float_comma(r: random.Random) -> Bug:
    text = f"{r.randint(0, 99)},{r.randint(1, 99)}"
    return Bug(
        f"price = float({text!r})",
        "`float()` expects a dot as the decimal separator; a comma (as in many European "
        "locales) is rejected.",
        f"price = float({text!r}.replace(',', '.'))",
    )


def module_attribute(r: random.Random) -> Bug:
    call = _pick(r, ["now", "today", "utcnow"])
    return Bug(
        f"import datetime\nstamp = datetime.{call}()",
        f"`datetime` is both a module and a class inside it; `{call}` belongs to the class "
        "`datetime.datetime`.",
        f"from datetime import datetime\nstamp = datetime.{call}()",
    )


def unbound_local(r: random.Random) -> Bug:
    name = _pick(r, ["counter", "total", "calls", "hits"])
    return Bug(
        f"{name} = 0\n\ndef track():\n    {name} += 1\n\ntrack()",
        f"Assigning to `{name}` inside the function makes it local to the function, so `+=` "
        "reads it before it has a value.",
        f"def track():\n    global {name}\n    {name} += 1\n# better: return the new value "
        "or keep state in an object",
    )


CATALOG: list[Callable[[random.Random], Bug]] = [
    int_parse,
    key_error,
    index_error,
    none_attribute,
    str_concat,
    json_quotes,
    file_not_found,
    module_not_found,
    zero_division,
    strptime_format,
    list_remove,
    dict_changed,
    tuple_assign,
    unexpected_keyword,
    missing_argument,
    math_domain,
    format_index,
    int_none,
    regex_group,
    base64_padding,
    unicode_encode,
    sort_mixed,
    unhashable,
    not_iterable,
    float_comma,
    module_attribute,
    unbound_local,
]


def error_line(code: str) -> str:
    """The last line of the traceback Python prints for ``code`` (which must fail)."""
    try:
        exec(code, {"__name__": "__main__"})  # the snippets are written above, to fail
    except Exception as exc:  # every snippet raises on purpose; we record what it raised
        return traceback.format_exception_only(exc)[-1].strip()
    raise AssertionError(f"snippet did not fail:\n{code}")
