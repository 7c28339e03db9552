"""Build the labelled decontamination evaluation set (deterministic).

Writes ``tests/data/decontam_eval.parquet``: chat records with a ``label``:

* ``planted`` — every HumanEval problem, planted in a realistic chat record once per light
  edit in :data:`PLANT_VARIANTS` (re-indentation, changed quotes and spacing, a reworded
  docstring sentence, a renamed parameter, a truncated prompt keeping 60–80 % of it, the
  prompt inside a longer user message, the solution alone in the assistant turn, the whole
  function in the assistant turn);
* ``clean`` — held-out code and prose on the same topics that shares no text with
  HumanEval: functions with their docstrings from the Python standard library (picked
  for topics HumanEval covers: sorting, primes, strings, digits, lists, ...) asked about or
  answered in chat, and Q&A built from docstrings of installed packages with doctest
  examples (numpy), which look like HumanEval prompts.

Usage: ``.venv/bin/python scripts/make_decontam_set.py [--out PATH] [--clean N]``
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib
import inspect
import random
import re
import sys
import sysconfig
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from posttrain.platform.evals import load_humaneval
from posttrain.platform.messages import Message, make_message
from posttrain.platform.schemas import MESSAGES_TYPE

SEED = 20240613
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "decontam_eval.parquet"

SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),
        pa.field("messages", MESSAGES_TYPE),
        pa.field("label", pa.string()),  # planted | clean
        pa.field("variant", pa.string()),  # the edit (planted) or the kind of text (clean)
        pa.field("item_id", pa.string()),  # the planted HumanEval task, null when clean
        pa.field("source", pa.string()),
    ]
)

# Topics HumanEval problems are about; clean stdlib functions are picked by these words.
TOPIC_WORDS = (
    "sort",
    "prime",
    "palindrome",
    "vowel",
    "digit",
    "median",
    "mean",
    "gcd",
    "fib",
    "sum",
    "count",
    "reverse",
    "string",
    "word",
    "list",
    "max",
    "min",
    "parse",
    "encode",
    "decode",
    "split",
    "join",
    "upper",
    "lower",
    "binary",
    "hex",
    "round",
    "even",
    "odd",
    "filter",
    "unique",
    "char",
    "bracket",
    "paren",
    "number",
    "factor",
    "square",
    "power",
)

ASSISTANT_OPENERS = (
    "Sure, here is one way to approach it.",
    "Happy to help. Let's think about the edge cases first.",
    "Here is an implementation with a short explanation.",
    "Good question; the key is to handle the empty input.",
)
USER_ASKS = (
    "Can you complete this function?",
    "Please implement the following.",
    "I'm stuck on this exercise, could you help?",
    "Finish this Python function for me:",
)
REWORDED_SENTENCES = (
    "Implement this so that it behaves like the examples below.",
    "Your job is to write the body of this function.",
    "Fill in the logic described in the rest of this comment.",
)


# -- light edits of a HumanEval problem ---------------------------------------------------


def _reindent(text: str, rng: random.Random) -> str:
    unit = rng.choice(("  ", "\t", "   "))
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        depth = (len(line) - len(stripped)) // 4
        lines.append(unit * depth + stripped.rstrip() + rng.choice(("", " ")))
    return "\n".join(line for line in lines if line.strip()) + "\n"


def _swap_quotes(text: str) -> str:
    swapped = text.replace('"""', "\0").replace("'", '"').replace("\0", "'''")
    return re.sub(r",\s*", ", ", swapped).replace("(", "( ").replace(")", " )")


def _docstring_bounds(prompt: str) -> tuple[int, int] | None:
    match = re.search(r'("""|\'\'\')(.*?)(\1)', prompt, flags=re.S)
    return (match.start(2), match.end(2)) if match else None


def _reword_sentence(prompt: str, rng: random.Random) -> str:
    bounds = _docstring_bounds(prompt)
    if bounds is None:
        return prompt + f"# {rng.choice(REWORDED_SENTENCES)}\n"
    start, end = bounds
    body = prompt[start:end]
    sentence = re.search(r"\S[^.\n]*\.?", body)
    if sentence is None:
        return prompt
    replaced = body[: sentence.start()] + rng.choice(REWORDED_SENTENCES) + body[sentence.end() :]
    return prompt[:start] + replaced + prompt[end:]


def _entry_def(prompt: str, entry_point: str) -> re.Match[str] | None:
    return re.search(rf"def {re.escape(entry_point)}\((.*?)\)[^:\n]*:", prompt, flags=re.S)


def _rename_parameter(prompt: str, entry_point: str, rng: random.Random) -> str:
    signature = _entry_def(prompt, entry_point)
    params = re.findall(r"(\w+)\s*(?::|,|$|=)", signature.group(1)) if signature else []
    old = params[0] if params else entry_point
    new = rng.choice(("value", "data", "arg", "inp", "xs")) + "_in"
    return re.sub(rf"\b{re.escape(old)}\b", new, prompt)


def _truncate(prompt: str, rng: random.Random) -> str:
    keep = rng.uniform(0.6, 0.8)
    cut = prompt.find("\n", int(len(prompt) * keep))
    return prompt if cut < 0 else prompt[: cut + 1]


def _solution_only(problem: dict[str, str]) -> str:
    signature = _entry_def(problem["prompt"], problem["entry_point"])
    header = signature.group(0) if signature else f"def {problem['entry_point']}(*args):"
    return header + "\n" + problem["canonical_solution"]


def _code(text: str) -> str:
    return f"```python\n{text.rstrip()}\n```"


Conversation = list[Message]
PlantFn = Callable[[dict[str, str], random.Random], Conversation]


def _ask(prompt_text: str, rng: random.Random) -> Conversation:
    return [
        make_message("user", f"{rng.choice(USER_ASKS)}\n\n{_code(prompt_text)}"),
        make_message("assistant", rng.choice(ASSISTANT_OPENERS)),
    ]


PLANT_VARIANTS: dict[str, PlantFn] = {
    "reindented": lambda p, rng: _ask(_reindent(p["prompt"], rng), rng),
    "quotes_spacing": lambda p, rng: _ask(_swap_quotes(p["prompt"]), rng),
    "reworded_docstring": lambda p, rng: _ask(_reword_sentence(p["prompt"], rng), rng),
    "renamed_parameter": lambda p, rng: _ask(
        _rename_parameter(p["prompt"], p["entry_point"], rng), rng
    ),
    "partial_prompt": lambda p, rng: _ask(_truncate(p["prompt"], rng), rng),
    "embedded_in_long_message": lambda p, rng: [
        make_message("system", "You are a patient programming tutor."),
        make_message(
            "user",
            "I'm preparing for an interview and my study group shared a list of warm-up "
            "problems. I understand loops and list comprehensions but I always get the "
            "edge cases wrong.\n\nHere is the one I'm working on today:\n\n"
            f"{_code(p['prompt'])}\n\nCould you explain the approach before writing any "
            "code, and then point out which inputs I should test? Thanks a lot!",
        ),
        make_message("assistant", rng.choice(ASSISTANT_OPENERS)),
    ],
    "solution_only": lambda p, rng: [
        make_message("user", f"Write `{p['entry_point']}` in Python, no explanation."),
        make_message("assistant", _code(_solution_only(p))),
    ],
    "full_function_answer": lambda p, rng: [
        make_message("user", f"{rng.choice(USER_ASKS)} It's called `{p['entry_point']}`."),
        make_message(
            "assistant",
            rng.choice(ASSISTANT_OPENERS)
            + "\n\n"
            + _code(_reindent(p["prompt"] + p["canonical_solution"], rng)),
        ),
    ],
}


def planted_records() -> Iterator[dict[str, object]]:
    """Every HumanEval problem under every edit of :data:`PLANT_VARIANTS`."""
    for problem in load_humaneval().to_pylist():
        problem["task_id"] = problem["item_id"]
        for variant, plant in PLANT_VARIANTS.items():
            rng = random.Random(f"{SEED}/{problem['item_id']}/{variant}")
            yield {
                "record_id": f"planted/{variant}/{problem['item_id']}",
                "messages": plant(problem, rng),
                "label": "planted",
                "variant": variant,
                "item_id": problem["item_id"],
                "source": "humaneval",
            }


# -- clean held-out text --------------------------------------------------------------


_SKIPPED_STDLIB_DIRS = {"site-packages", "test", "tests", "idlelib", "__pycache__"}


def _stdlib_functions() -> Iterator[tuple[str, str, str]]:
    """``(module, qualified name, source)`` of documented stdlib functions and methods."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        if _SKIPPED_STDLIB_DIRS & set(path.relative_to(stdlib).parts[:-1]):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        source = path.read_text(encoding="utf-8")
        module = ".".join(path.relative_to(stdlib).with_suffix("").parts)
        for owner, node in _functions(tree):
            if ast.get_docstring(node):
                segment = ast.get_source_segment(source, node)
                if segment and 200 <= len(segment) <= 3000:
                    yield module, owner + node.name, textwrap.dedent(segment)


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef]]:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            yield "", node
        elif isinstance(node, ast.ClassDef):
            for member in node.body:
                if isinstance(member, ast.FunctionDef):
                    yield f"{node.name}.", member


def _on_topic(name: str) -> bool:
    return any(word in name.rsplit(".", 1)[-1].lower() for word in TOPIC_WORDS)


def clean_stdlib_records(limit: int) -> Iterator[dict[str, object]]:
    """Stdlib functions on HumanEval topics: explained by the user, or given as an answer."""
    candidates = [f for f in _stdlib_functions() if _on_topic(f[1])]
    rng = random.Random(SEED)
    rng.shuffle(candidates)
    for number, (module, name, source) in enumerate(candidates[:limit]):
        if number % 2:
            messages = [
                make_message("user", f"What does this do?\n\n{_code(source)}"),
                make_message("assistant", rng.choice(ASSISTANT_OPENERS)),
            ]
        else:
            messages = [
                make_message("user", f"How is `{module}.{name}` implemented?"),
                make_message("assistant", "It is defined like this:\n\n" + _code(source)),
            ]
        yield {
            "record_id": f"clean/stdlib/{module}.{name}",
            "messages": messages,
            "label": "clean",
            "variant": "stdlib_function",
            "item_id": None,
            "source": f"stdlib:{module}.{name}",
        }


def clean_docstring_records(limit: int) -> Iterator[dict[str, object]]:
    """Q&A answered with numpy docstrings that carry ``>>>`` examples, like HumanEval's."""
    numpy = importlib.import_module("numpy")
    names = sorted(n for n in dir(numpy) if not n.startswith("_"))
    count = 0
    for name in names:
        doc = inspect.getdoc(getattr(numpy, name, None))
        if not doc or ">>>" not in doc or not 300 <= len(doc) <= 4000:
            continue
        yield {
            "record_id": f"clean/numpy_doc/{name}",
            "messages": [
                make_message("user", f"How do I use numpy.{name}? Show examples."),
                make_message("assistant", doc),
            ],
            "label": "clean",
            "variant": "numpy_docstring",
            "item_id": None,
            "source": f"numpy:{name}",
        }
        count += 1
        if count >= limit:
            return


def build(clean: int) -> pa.Table:
    """The whole evaluation set as one Arrow table."""
    rows = [
        *planted_records(),
        *clean_stdlib_records(clean),
        *clean_docstring_records(clean // 2),
    ]
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    digest = hashlib.sha256(str(rows).encode()).hexdigest()[:16]
    return table.replace_schema_metadata(
        {
            "generator": "scripts/make_decontam_set.py",
            "python": sys.version.split()[0],
            "numpy": importlib.import_module("numpy").__version__,
            "content-sha256": digest,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--clean",
        type=int,
        default=400,
        help="stdlib functions in the clean set (half as many numpy docstrings)",
    )
    args = parser.parse_args()
    table = build(args.clean)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.out, compression="zstd")
    counts = table.group_by(["label", "variant"]).aggregate([("record_id", "count")])
    for row in counts.sort_by([("label", "ascending"), ("variant", "ascending")]).to_pylist():
        print(f"{row['label']:8} {row['variant']:26} {row['record_id_count']:5}")
    print(f"wrote {table.num_rows} records to {args.out}")


if __name__ == "__main__":
    main()
