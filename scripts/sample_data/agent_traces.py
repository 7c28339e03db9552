"""Tool-using agent traces in the OpenAI format (the Parquet source).

Every trace offers a few tools, calls them with JSON arguments, receives tool results
that are computed here (currency and arithmetic are real calculations, Python snippets
are really executed, documentation lookups return real docstrings), and answers from the
results. Some traces call two tools in one turn, chain two steps, or recover from a
tool error.
"""

from __future__ import annotations

import contextlib
import io
import random
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sample_data.agent_tools import (
    CITIES,
    CONDITIONS,
    CURRENCY_NAMES,
    DEPENDENCIES,
    ORDER_ITEMS,
    PROJECTS,
    RATES,
    SHOP_PROMPT,
    SNIPPETS,
    STATUSES,
    Trace,
)
from sample_data.model import msg
from sample_data.stdlib_text import DocItem


def _weather(rng: random.Random, city: str, unit: str) -> dict[str, Any]:
    celsius = CITIES[city] + rng.randint(-7, 7)
    temp = celsius if unit == "celsius" else round(celsius * 9 / 5 + 32)
    return {
        "city": city,
        "temperature": temp,
        "unit": unit,
        "conditions": rng.choice(CONDITIONS),
        "humidity": rng.randint(25, 95),
        "wind_kph": rng.randint(0, 45),
    }


def _describe_weather(w: dict[str, Any]) -> str:
    symbol = "°C" if w["unit"] == "celsius" else "°F"
    return (
        f"{w['temperature']}{symbol} and {w['conditions']} in {w['city']} (humidity "
        f"{w['humidity']}%, wind {w['wind_kph']} km/h)"
    )


def weather(rng: random.Random, index: int) -> dict[str, Any]:
    t = Trace(
        rng,
        ["get_weather", *rng.sample(["calculate", "convert_currency", "create_calendar_event"], 1)],
    )
    city, unit = rng.choice(sorted(CITIES)), rng.choice(["celsius", "celsius", "fahrenheit"])
    t.user(
        rng.choice(
            [
                f"What's the weather like in {city} right now?",
                f"Do I need a jacket in {city} today?",
                f"Weather check for {city}, "
                f"please{' in Fahrenheit' if unit == 'fahrenheit' else ''}.",
                f"How warm is it in {city} at the moment?",
            ]
        )
    )
    w = _weather(rng, city, unit)
    t.calls(("get_weather", {"city": city, "unit": unit}, w))
    advice = (
        "Take an umbrella."
        if "rain" in w["conditions"] or "thunder" in w["conditions"]
        else "A light jacket should be enough."
        if w["temperature"] < (16 if unit == "celsius" else 61)
        else "No jacket needed."
    )
    t.answer(f"Right now it's {_describe_weather(w)}. {advice}")
    return t.record(index)


def weather_compare(rng: random.Random, index: int) -> dict[str, Any]:
    t = Trace(rng, ["get_weather"])
    first, second = rng.sample(sorted(CITIES), 2)
    t.user(
        rng.choice(
            [
                f"Compare the weather in {first} and {second}.",
                f"Is it warmer in {first} or in {second} today?",
            ]
        )
    )
    a, b = _weather(rng, first, "celsius"), _weather(rng, second, "celsius")
    t.calls(
        ("get_weather", {"city": first, "unit": "celsius"}, a),
        ("get_weather", {"city": second, "unit": "celsius"}, b),
    )
    diff = a["temperature"] - b["temperature"]
    verdict = (
        f"{first} is warmer by {diff}°C."
        if diff > 0
        else f"{second} is warmer by {-diff}°C."
        if diff < 0
        else "Both are at the same temperature."
    )
    t.answer(f"{first}: {_describe_weather(a)}.\n{second}: {_describe_weather(b)}.\n\n{verdict}")
    return t.record(index)


def _money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"


def currency(rng: random.Random, index: int) -> dict[str, Any]:
    t = Trace(rng, ["convert_currency", "calculate"])
    source, target = rng.sample(sorted(RATES), 2)
    amount = Decimal(
        rng.choice([25, 80, 120, 250, 400, 999, 1500, 3200, 12000]) + rng.randint(0, 99)
    )
    rate = (RATES[target] / RATES[source]).quantize(Decimal("0.000001"), ROUND_HALF_UP)
    converted = (amount * rate).quantize(Decimal("0.01"), ROUND_HALF_UP)
    t.user(
        rng.choice(
            [
                f"How much is {amount} {CURRENCY_NAMES[source]} in {CURRENCY_NAMES[target]}?",
                f"Convert {amount} {source} to {target}.",
                f"I need to pay {amount} {source}. What is that in {target} today?",
            ]
        )
    )
    t.calls(
        (
            "convert_currency",
            {"amount": int(amount), "from_currency": source, "to_currency": target},
            {
                "amount": int(amount),
                "from": source,
                "to": target,
                "rate": float(rate),
                "converted": float(converted),
            },
        )
    )
    t.answer(
        f"{amount} {source} is about {_money(converted)} {target} at today's rate of {rate} "
        f"{target} per {source}."
    )
    if rng.random() < 0.4:
        fee = rng.choice([1, 1.5, 2, 2.5, 3])
        after = (converted * (1 - Decimal(str(fee)) / 100)).quantize(Decimal("0.01"), ROUND_HALF_UP)
        t.user(f"My bank charges a {fee}% fee on top. How much do I actually get?")
        t.calls(
            (
                "calculate",
                {"expression": f"{converted} * (1 - {fee} / 100)"},
                {"result": float(after)},
            )
        )
        t.answer(
            f"After the {fee}% fee you would receive {_money(after)} {target} (a fee of "
            f"{_money(converted - after)} {target})."
        )
    return t.record(index)


def tip_split(rng: random.Random, index: int) -> dict[str, Any]:
    t = Trace(rng, ["calculate"], system=rng.random() < 0.7)
    bill, tip, people = (
        Decimal(rng.randint(1800, 48000)) / 100,
        rng.choice([10, 12, 15, 18, 20, 22]),
        rng.randint(2, 8),
    )
    per_person = (bill * (100 + tip) / 100 / people).quantize(Decimal("0.01"), ROUND_HALF_UP)
    t.user(
        rng.choice(
            [
                f"Our dinner bill is ${bill}. With a {tip}% tip, split between {people} "
                "people, what does each person pay?",
                f"Split ${bill} plus {tip}% tip {people} ways.",
            ]
        )
    )
    t.calls(
        (
            "calculate",
            {"expression": f"{bill} * (1 + {tip} / 100) / {people}"},
            {"result": float(per_person)},
        )
    )
    t.answer(
        f"Each person pays ${per_person} (total with tip: "
        f"${(bill * (100 + tip) / 100).quantize(Decimal('0.01'), ROUND_HALF_UP)})."
    )
    return t.record(index)


def _docs_item(rng: random.Random, items: list[DocItem]) -> DocItem:
    return items.pop(rng.randrange(len(items)))


def make_docs_lookup(items: list[DocItem]) -> Callable[[random.Random, int], dict[str, Any]]:
    """A scenario that answers from real docstrings, each used by one trace only."""

    def docs_lookup(rng: random.Random, index: int) -> dict[str, Any]:
        if not items:
            return weather(rng, index)
        item = _docs_item(rng, items)
        t = Trace(rng, ["search_python_docs", "run_python"])
        t.user(
            rng.choice(
                [
                    f"Look up `{item.qualname}` in the Python docs for me.",
                    f"What does {item.qualname} do? Check the docs.",
                    f"Can you find the documentation for {item.qualname}?",
                ]
            )
        )
        summary = item.doc.split("\n\n")[0]
        t.calls(
            (
                "search_python_docs",
                {"query": item.qualname},
                {
                    "name": item.qualname,
                    "signature": f"{item.name}{item.signature}",
                    "kind": item.kind,
                    "summary": summary,
                },
            )
        )
        t.answer(
            f"According to the Python documentation, `{item.qualname}{item.signature}`:\n\n"
            f"{summary}"
        )
        return t.record(index)

    return docs_lookup


def order_status(rng: random.Random, index: int) -> dict[str, Any]:
    t = Trace(rng, ["lookup_order"])
    t.turns[0] = msg("system", SHOP_PROMPT)
    order_id = f"{rng.choice('ABCDEFGH')}{rng.randint(10000, 99999)}"
    items = rng.sample(ORDER_ITEMS, rng.randint(1, 3))
    status = rng.choice(STATUSES)
    day = rng.randint(3, 28)
    result: dict[str, Any] = {
        "order_id": order_id,
        "status": status,
        "items": items,
        "carrier": rng.choice(["UPS", "DHL", "FedEx", "USPS"]),
    }
    if status != "processing":
        result["tracking_number"] = "".join(rng.choice("0123456789") for _ in range(12))
    result["estimated_delivery"] = f"2024-06-{day:02d}"
    t.user(
        rng.choice(
            [
                f"Hi, where is my order {order_id}?",
                f"Can you check the status of order #{order_id}?",
                f"My order {order_id} still hasn't arrived. What's going on?",
            ]
        )
    )
    t.calls(("lookup_order", {"order_id": order_id}, result))
    things = " and ".join(items) if len(items) < 3 else f"{items[0]}, {items[1]} and {items[2]}"
    lines = {
        "processing": f"Your order {order_id} ({things}) is still being prepared and should "
        f"ship soon; the current estimate is delivery by June {day}.",
        "shipped": f"Good news: order {order_id} ({things}) has shipped with "
        f"{result['carrier']}, tracking number {result.get('tracking_number')}. "
        f"Expected delivery: June {day}.",
        "out for delivery": f"Order {order_id} is out for delivery today with "
        f"{result['carrier']}. Your {things} should arrive by the end of "
        "the day.",
        "delivered": f"Order {order_id} shows as delivered on June {day}. If you can't find "
        f"the {things}, check with neighbours or your building's mailroom, and "
        "I can open a claim if it's still missing.",
        "delayed": f"I'm sorry: order {order_id} ({things}) is delayed at the "
        f"{result['carrier']} depot. The new estimate is June {day}; I can offer "
        "a refund of the shipping fee.",
    }
    t.answer(lines[status])
    return t.record(index)


def run_python(rng: random.Random, index: int) -> dict[str, Any]:
    t = Trace(rng, ["run_python", "calculate"])
    question, code = rng.choice(SNIPPETS)(rng)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})  # the snippets are written above; running them gives real answers
    t.user(question)
    t.calls(("run_python", {"code": code}, {"stdout": out.getvalue(), "exit_code": 0}))
    t.answer(
        rng.choice(["The result is ", "Running it gives ", "Answer: "])
        + out.getvalue().strip()
        + rng.choice(["", ".", f" (computed with:\n\n```python\n{code}\n```)"])
    )
    return t.record(index)


def project_question(rng: random.Random, index: int) -> dict[str, Any]:
    t = Trace(rng, ["list_directory", "read_file"])
    name, python = rng.choice(PROJECTS), rng.choice(["3.9", "3.10", "3.11", "3.12"])
    deps = rng.sample(DEPENDENCIES, rng.randint(2, 6))
    version = f"{rng.randint(0, 3)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
    listing = sorted(
        [
            "README.md",
            "pyproject.toml",
            "src",
            "tests",
            *rng.sample([".gitignore", "Makefile", "LICENSE", "docs", "Dockerfile"], 3),
        ]
    )
    pyproject = (
        f'[project]\nname = "{name}"\nversion = "{version}"\nrequires-python = ">={python}"\n'
        "dependencies = [\n" + "".join(f'    "{d}",\n' for d in deps) + "]\n"
    )
    ask = rng.choice(["python", "deps", "version"])
    t.user(
        {
            "python": "Which Python version does this project need?",
            "deps": "What are the runtime dependencies of this project?",
            "version": "What version is this package at?",
        }[ask]
    )
    t.calls(("list_directory", {"path": "."}, {"entries": listing}))
    t.calls(("read_file", {"path": "pyproject.toml"}, pyproject))
    t.answer(
        {
            "python": f"`{name}` requires Python {python} or newer (`requires-python = "
            f'">={python}"` in pyproject.toml).',
            "deps": f"`{name}` depends on: " + ", ".join(f"`{d}`" for d in deps) + ".",
            "version": f"pyproject.toml says `{name}` is at version {version}.",
        }[ask]
    )
    return t.record(index)


def schedule(rng: random.Random, index: int) -> dict[str, Any]:
    t = Trace(rng, ["create_calendar_event"])
    day = rng.randint(3, 28)
    hour, minute, duration = (
        rng.randint(8, 17),
        rng.choice([0, 15, 30, 45]),
        rng.choice([15, 30, 45, 60, 90]),
    )
    topic = rng.choice(
        [
            "design review",
            "sprint planning",
            "1:1 with Sam",
            "incident retro",
            "budget sync",
            "interview debrief",
            "roadmap workshop",
            "customer call",
            "onboarding session",
        ]
    )
    t.user(f"Book a {duration}-minute {topic} on June {day} at {hour}:{minute:02d}.")
    event_id = "evt_" + "".join(rng.choice("0123456789abcdef") for _ in range(8))
    t.calls(
        (
            "create_calendar_event",
            {
                "title": topic.capitalize(),
                "date": f"2024-06-{day:02d}",
                "time": f"{hour:02d}:{minute:02d}",
                "duration_minutes": duration,
            },
            {"event_id": event_id, "status": "created"},
        )
    )
    end_h, end_m = divmod(hour * 60 + minute + duration, 60)
    t.answer(
        f'Done: "{topic.capitalize()}" is on your calendar for June {day}, '
        f"{hour:02d}:{minute:02d}–{end_h:02d}:{end_m:02d} (event {event_id})."
    )
    return t.record(index)


def weather_typo(rng: random.Random, index: int) -> dict[str, Any]:
    t = Trace(rng, ["get_weather"])
    city = rng.choice([c for c in sorted(CITIES) if len(c) > 4 and " " not in c])
    cut = rng.choice([i for i in range(1, len(city) - 1) if city[i] != city[i + 1]])
    typo = city[:cut] + city[cut + 1] + city[cut] + city[cut + 2 :]
    t.user(f"weather in {typo.lower()}?")
    t.calls(
        (
            "get_weather",
            {"city": typo.lower(), "unit": "celsius"},
            {"error": f"city not found: '{typo.lower()}'"},
        )
    )
    t.answer(f'I couldn\'t find a city called "{typo.lower()}". Did you mean {city}?')
    t.user(rng.choice(["yes", "Yes, that one.", f"yes, {city}", "right, sorry"]))
    w = _weather(rng, city, "celsius")
    t.calls(("get_weather", {"city": city, "unit": "celsius"}, w))
    t.answer(f"In {city} it's currently {_describe_weather(w).split(' in ')[0]}.")
    return t.record(index)


def scenarios(
    docs: list[DocItem],
) -> list[tuple[Callable[[random.Random, int], dict[str, Any]], int]]:
    """Scenario builders with their relative weights."""
    return [
        (weather, 3),
        (weather_compare, 2),
        (currency, 3),
        (tip_split, 2),
        (make_docs_lookup(docs), 3),
        (order_status, 3),
        (run_python, 3),
        (project_question, 2),
        (schedule, 2),
        (weather_typo, 1),
    ]
