"""Arithmetic exercises with worked answers: conversions, long multiplication, order of
operations, fractions, equations, clock time, statistics and probability."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

from sample_data.math_problems import Problem


def conversion(rng: random.Random) -> Problem:
    if rng.random() < 0.5:
        celsius = rng.randint(-30, 45)
        fahrenheit = Fraction(celsius * 9, 5) + 32
        return Problem(
            f"Convert {celsius} °C to Fahrenheit.",
            f"F = C × 9/5 + 32 = {celsius} × 1.8 + 32 = {float(fahrenheit):g}.\n\n"
            f"**Answer:** {float(fahrenheit):g} °F",
        )
    km = (
        rng.choice([5, 10, 21.0975, 42.195, 15, 50, 100, 160])
        if rng.random() < 0.5
        else rng.randint(2, 400)
    )
    miles = Decimal(str(km)) / Decimal("1.609344")
    return Problem(
        f"A route is {km} km long. How many miles is that? (1 mile = 1.609344 km)",
        f"Miles = {km} ÷ 1.609344 ≈ {miles:.3f}.\n\n**Answer:** about {miles:.2f} miles",
    )


def long_multiplication(rng: random.Random) -> Problem:
    a, b = rng.randint(120, 9999), rng.randint(12, 99)
    tens, units = b // 10 * 10, b % 10
    question = rng.choice(
        [
            f"What is {a} × {b}?",
            f"Compute {a} times {b} without a calculator.",
            f"Multiply {a} by {b}.",
        ]
    )
    solution = (
        f"Split {b} into {tens} + {units}.\n{a} × {tens} = {a * tens:,}\n{a} × {units} = "
        f"{a * units:,}\n"
        f"Sum: {a * tens:,} + {a * units:,} = {a * b:,}\n\n**Answer:** {a * b:,}"
    )
    return Problem(question, solution)


def order_of_operations(rng: random.Random) -> Problem:
    e = rng.randint(2, 9)
    c = rng.randint(5, 30)
    d = rng.randint(1, c - 1)
    while (c - d) % e:
        d -= 1
    if d <= 0:
        d, c = e, 2 * e
    a, b = rng.randint(1, 99), rng.randint(2, 12)
    inner, product = c - d, b * (c - d)
    value = a + product // e
    question = f"Evaluate {a} + {b} × ({c} − {d}) ÷ {e}."
    solution = (
        f"Parentheses first: {c} − {d} = {inner}.\nThen multiplication and division left to "
        f"right: {b} × {inner} = {product}, "
        f"{product} ÷ {e} = {product // e}.\nFinally the addition: {a} + {product // e} = "
        f"{value}.\n\n**Answer:** {value}"
    )
    return Problem(question, solution)


def fractions_sum(rng: random.Random) -> Problem:
    f1 = Fraction(rng.randint(1, 11), rng.randint(2, 12))
    f2 = Fraction(rng.randint(1, 11), rng.randint(2, 12))
    if rng.random() < 0.5:
        common = (
            f1.denominator
            * f2.denominator
            // __import__("math").gcd(f1.denominator, f2.denominator)
        )
        result = f1 + f2
        question = f"What is {f1} + {f2}? Give the answer in lowest terms."
        n1, n2 = f1.numerator * common // f1.denominator, f2.numerator * common // f2.denominator
        solution = (
            f"Common denominator: {common}.\n{f1} = {n1}/{common} and {f2} = {n2}/{common}.\n"
            f"Sum = {n1 + n2}/{common} = {result}.\n\n**Answer:** {result}"
        )
    else:
        result = f1 * f2
        question = f"Multiply {f1} by {f2} and simplify."
        solution = (
            f"Multiply numerators and denominators: ({f1.numerator} × {f2.numerator}) / "
            f"({f1.denominator} × {f2.denominator}) = "
            f"{f1.numerator * f2.numerator}/{f1.denominator * f2.denominator}.\nSimplified: "
            f"{result}.\n\n**Answer:** {result}"
        )
    return Problem(question, solution)


def linear_equation(rng: random.Random) -> Problem:
    a, x, b = (
        rng.choice([n for n in range(-9, 13) if n not in (0, 1)]),
        rng.randint(-20, 20),
        rng.randint(-50, 50),
    )
    c = a * x + b
    sign = f"+ {b}" if b >= 0 else f"− {-b}"
    question = rng.choice([f"Solve for x: {a}x {sign} = {c}.", f"Find x if {a}x {sign} = {c}."])
    solution = (
        f"Subtract {b} from both sides: {a}x = {c} − ({b}) = {c - b}.\nDivide by {a}: x = "
        f"{c - b} ÷ {a} = {x}.\n"
        f"Check: {a} × {x} {sign} = {c}. ✓\n\n**Answer:** x = {x}"
    )
    return Problem(question, solution)


def clock(rng: random.Random) -> Problem:
    start = rng.randint(9 * 60, 22 * 60)
    start -= start % 5
    duration = rng.randint(70, 200)
    end = (start + duration) % (24 * 60)

    def fmt(minutes: int) -> str:
        h, m = divmod(minutes % (24 * 60), 60)
        return f"{(h - 1) % 12 + 1}:{m:02d} {'am' if h < 12 else 'pm'}"

    event = rng.choice(["movie", "concert", "football match", "lecture", "flight"])
    question = (
        f"A {event} starts at {fmt(start)} and lasts {duration // 60} h "
        f"{duration % 60} min. When does it end?"
    )
    solution = (
        f"{fmt(start)} + {duration // 60} h = {fmt(start + duration // 60 * 60)}.\nThen add "
        f"{duration % 60} min: {fmt(end)}.\n\n"
        f"**Answer:** {fmt(end)}"
    )
    return Problem(question, solution)


def median_range(rng: random.Random) -> Problem:
    values = [rng.randint(1, 120) for _ in range(rng.randint(5, 10))]
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = (
        Fraction(ordered[mid]) if len(ordered) % 2 else Fraction(ordered[mid - 1] + ordered[mid], 2)
    )
    question = f"Find the median and the range of this data set: {', '.join(map(str, values))}."
    how = (
        f"the middle value is {ordered[mid]}"
        if len(ordered) % 2
        else f"the two middle values are {ordered[mid - 1]} and {ordered[mid]}, so the "
        f"median is their mean, {float(median):g}"
    )
    solution = (
        f"Sorted: {', '.join(map(str, ordered))}.\nThere are {len(ordered)} values; {how}.\n"
        f"Range = {ordered[-1]} − {ordered[0]} = {ordered[-1] - ordered[0]}.\n\n**Answer:** "
        f"median {float(median):g}, range {ordered[-1] - ordered[0]}"
    )
    return Problem(question, solution)


def marbles(rng: random.Random) -> Problem:
    red, blue, green = rng.randint(1, 20), rng.randint(1, 20), rng.randint(1, 20)
    total = red + blue + green
    p = Fraction(total - blue, total)
    question = (
        f"A bag holds {red} red, {blue} blue and {green} green marbles. One marble is drawn "
        "at random. "
        f"What is the probability that it is not blue?"
    )
    solution = (
        f"Total marbles = {red} + {blue} + {green} = {total}.\nNot blue = {total} − {blue} = "
        f"{total - blue}.\n"
        f"P(not blue) = {total - blue}/{total} = {p} ≈ {float(p):.1%}.\n\n**Answer:** {p}"
    )
    return Problem(question, solution)
