"""The tools agent traces call, and what their results are made from.

Tool specifications, the fixed reference data (cities, exchange rates, orders, projects)
and the Python snippets ``run_python`` really executes; :class:`Trace` builds one
conversation and numbers its tool calls deterministically.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sample_data.model import Conversation, msg, tool_call

TOOL_SPECS: dict[str, dict[str, Any]] = {
    "get_weather": {
        "description": "Current weather for a city.",
        "parameters": {"city": "string", "unit": "celsius|fahrenheit"},
    },
    "convert_currency": {
        "description": "Convert an amount between currencies at today's rate.",
        "parameters": {"amount": "number", "from_currency": "string", "to_currency": "string"},
    },
    "calculate": {
        "description": "Evaluate an arithmetic expression exactly.",
        "parameters": {"expression": "string"},
    },
    "search_python_docs": {
        "description": "Look up a Python standard library object.",
        "parameters": {"query": "string"},
    },
    "lookup_order": {
        "description": "Status of a customer order.",
        "parameters": {"order_id": "string"},
    },
    "run_python": {
        "description": "Run a short Python snippet in a sandbox and return stdout.",
        "parameters": {"code": "string"},
    },
    "list_directory": {
        "description": "List files in a project directory.",
        "parameters": {"path": "string"},
    },
    "read_file": {
        "description": "Read a text file from the project.",
        "parameters": {"path": "string"},
    },
    "create_calendar_event": {
        "description": "Create a calendar event.",
        "parameters": {
            "title": "string",
            "date": "YYYY-MM-DD",
            "time": "HH:MM",
            "duration_minutes": "integer",
        },
    },
}


SYSTEM_PROMPTS = [
    "You are a helpful assistant with access to tools. Call a tool when you need live data; "
    "otherwise answer directly.",
    "You are an operations assistant. Use the provided functions to look up information "
    "before answering. Keep answers short.",
    "You are a careful assistant. Never guess values a tool can provide, and cite the tool "
    "result in your answer.",
    "You can call functions. Prefer one precise call over several vague ones, and explain "
    "results in plain language.",
    "Assistant for a small engineering team. Tools are available for files, code execution, "
    "docs and scheduling.",
]


SHOP_PROMPT = (
    "You are ShopBot, the customer support assistant of an online store. Be polite and concise."
)


CITIES = {
    "Lisbon": 19,
    "Oslo": 6,
    "Madrid": 24,
    "Nairobi": 22,
    "Osaka": 18,
    "Toronto": 9,
    "Buenos Aires": 16,
    "Cairo": 29,
    "Reykjavik": 3,
    "Sydney": 20,
    "Mumbai": 31,
    "Vancouver": 11,
    "Istanbul": 17,
    "Lima": 19,
    "Seoul": 14,
    "Berlin": 12,
    "Dublin": 10,
    "Singapore": 30,
    "Mexico City": 21,
    "Cape Town": 18,
    "Helsinki": 5,
    "Athens": 23,
    "Montreal": 8,
    "Auckland": 15,
    "Denver": 13,
    "Hanoi": 27,
}


CONDITIONS = [
    "clear",
    "partly cloudy",
    "overcast",
    "light rain",
    "heavy rain",
    "thunderstorms",
    "fog",
    "snow showers",
    "windy",
]


RATES = {
    "USD": Decimal("1"),
    "EUR": Decimal("0.9234"),
    "GBP": Decimal("0.7871"),
    "JPY": Decimal("151.62"),
    "CAD": Decimal("1.3652"),
    "CHF": Decimal("0.9043"),
    "INR": Decimal("83.41"),
    "BRL": Decimal("5.0712"),
    "AUD": Decimal("1.5208"),
    "MXN": Decimal("16.883"),
}


CURRENCY_NAMES = {
    "USD": "US dollars",
    "EUR": "euros",
    "GBP": "British pounds",
    "JPY": "Japanese yen",
    "CAD": "Canadian dollars",
    "CHF": "Swiss francs",
    "INR": "Indian rupees",
    "BRL": "Brazilian reais",
    "AUD": "Australian dollars",
    "MXN": "Mexican pesos",
}


ORDER_ITEMS = [
    "wireless mouse",
    "USB-C hub",
    "standing desk mat",
    "mechanical keyboard",
    "27-inch monitor",
    "laptop sleeve",
    "noise-cancelling headphones",
    "webcam",
    "desk lamp",
    "ergonomic chair",
    "phone stand",
    "external SSD",
]


STATUSES = ["processing", "shipped", "out for delivery", "delivered", "delayed"]


HASH_WORDS = ["posttrain", "hello world", "iceberg", "bronze", "dagster", "ray"]


FRUITS = ["delta", "kiwi", "banana", "fig", "cherry", "plum", "apricot", "lime", "mango", "pear"]


SNIPPETS: list[Callable[[random.Random], tuple[str, str]]] = [
    lambda r: (
        f"What is the sum of the squares of 1 to {(n := r.randint(10, 500))}?",
        f"print(sum(i * i for i in range(1, {n} + 1)))",
    ),
    lambda r: (
        f"How many primes are there below {(n := r.randint(50, 5000))}?",
        f"n = {n}\nsieve = [True] * n\nsieve[:2] = [False, False]\nfor i in range(2, int(n "
        "** 0.5) + 1):\n    if sieve[i]:\n        sieve[i * i::i] = [False] * len(range(i * "
        "i, n, i))\nprint(sum(sieve))",
    ),
    lambda r: (
        f"What's the {(n := r.randint(20, 90))}th Fibonacci number?",
        f"a, b = 0, 1\nfor _ in range({n}):\n    a, b = b, a + b\nprint(a)",
    ),
    lambda r: (
        "Which weekday was "
        f"{(d := f'{r.randint(1950, 2023)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}')}?",
        f"import datetime\nprint(datetime.date.fromisoformat('{d}').strftime('%A'))",
    ),
    lambda r: (
        f"What is {(a := r.randint(2, 9))} to the power of {(b := r.randint(20, 80))}?",
        f"print({a} ** {b})",
    ),
    lambda r: (
        "How many days are there between "
        f"{(d1 := f'{r.randint(2000, 2010)}-0{r.randint(1, 9)}-1{r.randint(0, 9)}')} and "
        f"{(d2 := f'{r.randint(2015, 2024)}-0{r.randint(1, 9)}-2{r.randint(0, 8)}')}?",
        f"from datetime import date\nprint((date.fromisoformat('{d2}') - "
        f"date.fromisoformat('{d1}')).days)",
    ),
    lambda r: (
        "What is the SHA-256 of the string "
        f"'{(w := r.choice(HASH_WORDS))}{(k := r.randint(1, 999))}'?",
        f"import hashlib\nprint(hashlib.sha256('{w}{k}'.encode()).hexdigest())",
    ),
    lambda r: (
        f"What is the greatest common divisor of {(a := r.randint(100, 99999))} and "
        f"{(b := r.randint(100, 99999))}?",
        f"import math\nprint(math.gcd({a}, {b}))",
    ),
    lambda r: (
        f"Sort these words by length, then alphabetically: {(ws := r.sample(FRUITS, 6))}",
        f"words = {ws}\nprint(sorted(words, key=lambda w: (len(w), w)))",
    ),
    lambda r: (
        f"What is {(n := r.randint(10, 30))} factorial?",
        f"import math\nprint(math.factorial({n}))",
    ),
    lambda r: (
        f"Convert {(n := r.randint(1000, 10**9))} to hexadecimal and binary.",
        f"print(hex({n}), bin({n}))",
    ),
]


PROJECTS = [
    "invoice-parser",
    "weather-cli",
    "pixel-sorter",
    "team-dashboard",
    "log-shipper",
    "recipe-api",
    "chess-engine",
    "tiny-etl",
]


DEPENDENCIES = [
    "requests>=2.31",
    "pydantic>=2",
    "fastapi>=0.110",
    "click>=8.1",
    "rich>=13",
    "sqlalchemy>=2",
    "httpx>=0.27",
    "numpy>=1.26",
    "pandas>=2.2",
    "typer>=0.12",
    "uvicorn>=0.29",
    "pyyaml>=6",
    "jinja2>=3.1",
]


class Trace:
    """Builds one conversation, numbering tool calls deterministically."""

    def __init__(self, rng: random.Random, tools: list[str], system: bool = True) -> None:
        self.rng = rng
        self.tools = tools
        self.turns: Conversation = [msg("system", rng.choice(SYSTEM_PROMPTS))] if system else []

    def call_id(self) -> str:
        return "call_" + "".join(
            self.rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(12)
        )

    def user(self, text: str) -> None:
        self.turns.append(msg("user", text))

    def calls(self, *calls: tuple[str, dict[str, Any], Any]) -> None:
        """An assistant turn calling ``(name, arguments, result)`` tools, then their results."""
        made = [tool_call(self.call_id(), name, args) for name, args, _ in calls]
        self.turns.append(msg("assistant", None, tool_calls=made))
        for made_call, (_, _, result) in zip(made, calls, strict=True):
            text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
            self.turns.append(msg("tool", text, tool_call_id=made_call["id"]))

    def answer(self, text: str) -> None:
        self.turns.append(msg("assistant", text))

    def record(self, index: int) -> dict[str, Any]:
        tools = [
            {"type": "function", "function": {"name": name, **TOOL_SPECS[name]}}
            for name in self.tools
        ]
        return {
            "id": f"trace-{index:05d}",
            "tools": json.dumps(tools, ensure_ascii=False),
            "conversation": self.turns,
        }
