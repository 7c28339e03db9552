"""Word problems with computed answers: money, rates, geometry, ages, recipes.

Each template draws its numbers from the seeded generator, computes the answer with
:mod:`decimal` / :mod:`fractions`, and writes the steps a tutor would show; some offer a
follow-up question that changes one quantity.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

NAMES = [
    "Ava",
    "Ben",
    "Carla",
    "Dev",
    "Elif",
    "Farid",
    "Grace",
    "Hugo",
    "Ines",
    "Jonah",
    "Keiko",
    "Leo",
    "Maya",
    "Nikhil",
    "Olga",
    "Pablo",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Ximena",
    "Yusuf",
    "Zoe",
]


CENT = Decimal("0.01")


@dataclass(frozen=True)
class Problem:
    question: str
    solution: str
    followup: tuple[str, str] | None = None


def money(value: Decimal | float | int) -> str:
    return f"${Decimal(value).quantize(CENT, ROUND_HALF_UP):,}"


def dec(value: Decimal | float | int | str) -> Decimal:
    return Decimal(str(value)).quantize(CENT, ROUND_HALF_UP)


def shopping(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    (item1, lo1, hi1), (item2, lo2, hi2) = rng.sample(
        [
            ("notebooks", 1, 6),
            ("pens", 1, 3),
            ("mugs", 4, 12),
            ("apples", 1, 2),
            ("candles", 3, 9),
            ("plant pots", 2, 15),
            ("books", 8, 25),
            ("tennis balls", 1, 4),
            ("towels", 5, 18),
        ],
        2,
    )
    n1, n2 = rng.randint(2, 12), rng.randint(2, 12)
    p1, p2 = dec(rng.uniform(lo1, hi1)), dec(rng.uniform(lo2, hi2))
    c1, c2 = n1 * p1, n2 * p2
    total = c1 + c2
    bill = (int(total) // 20 + 1) * 20
    question = rng.choice(
        [
            f"{name} buys {n1} {item1} at {money(p1)} each and {n2} {item2} at {money(p2)} "
            f"each. How much does {name} spend in total?",
            f"At the market, {item1} cost {money(p1)} each and {item2} cost {money(p2)} "
            f"each. What is the total for {n1} {item1} and {n2} {item2}?",
        ]
    )
    solution = (
        f"{item1.capitalize()}: {n1} × {money(p1)} = {money(c1)}\n{item2.capitalize()}: {n2} "
        f"× {money(p2)} = {money(c2)}\n"
        f"Total: {money(c1)} + {money(c2)} = {money(total)}\n\n**Answer:** {money(total)}"
    )
    follow = (
        f"How much change is left from a {money(bill)} bill?",
        f"Change = {money(bill)} − {money(total)} = {money(bill - total)}.\n\n**Answer:** "
        f"{money(bill - total)}",
    )
    return Problem(question, solution, follow)


def speed(rng: random.Random) -> Problem:
    vehicle = rng.choice(["train", "bus", "cyclist", "car", "ferry", "runner"])
    distance, hours, minutes = (
        rng.randint(12, 480),
        rng.randint(0, 6),
        rng.choice([10, 15, 20, 30, 40, 45, 50]),
    )
    elapsed = Fraction(hours) + Fraction(minutes, 60)
    kmh = Fraction(distance) / elapsed
    question = rng.choice(
        [
            f"A {vehicle} covers {distance} km in {hours} h {minutes} min. What is its "
            "average speed in km/h?",
            f"If a {vehicle} travels {distance} km and the trip takes {hours} hours and "
            f"{minutes} minutes, what is the average speed?",
        ]
    )
    solution = (
        f"Convert the time to hours: {hours} + {minutes}/60 = {float(elapsed):.4g} h.\n"
        f"Speed = distance ÷ time = {distance} ÷ {float(elapsed):.4g} ≈ {float(kmh):.2f} "
        f"km/h.\n\n**Answer:** about {float(kmh):.1f} km/h"
    )
    other = rng.randint(20, 900)
    needed = Fraction(other) / kmh
    h, m = divmod(round(float(needed) * 60), 60)
    follow = (
        f"At that speed, how long would {other} km take?",
        f"Time = {other} ÷ {float(kmh):.2f} ≈ {float(needed):.2f} h, which is about {h} h "
        f"{m} min.\n\n**Answer:** about {h} h {m} min",
    )
    return Problem(question, solution, follow)


def discount(rng: random.Random) -> Problem:
    product = rng.choice(
        [
            "jacket",
            "pair of headphones",
            "bicycle",
            "desk lamp",
            "backpack",
            "blender",
            "winter coat",
        ]
    )
    price, off, tax = (
        dec(rng.randint(18, 640) - 0.01),
        rng.choice([10, 15, 20, 25, 30, 35, 40]),
        rng.choice([5, 6, 7.5, 8, 8.25, 10]),
    )
    sale = dec(price * (100 - off) / 100)
    final = dec(sale * (100 + Decimal(str(tax))) / 100)
    question = (
        f"A {product} costs {money(price)}. It is {off}% off, and {tax}% sales tax is added to the "
        f"discounted price. What is the final price?"
    )
    solution = (
        f"Discount: {off}% of {money(price)} = {money(price - sale)}, so the sale price is "
        f"{money(sale)}.\n"
        f"Tax: {tax}% of {money(sale)} = {money(final - sale)}.\nFinal price: {money(sale)} "
        f"+ {money(final - sale)} = {money(final)}.\n\n"
        f"**Answer:** {money(final)}"
    )
    off2 = rng.choice([p for p in (5, 12, 45, 50, 60) if p != off])
    sale2 = dec(price * (100 - off2) / 100)
    final2 = dec(sale2 * (100 + Decimal(str(tax))) / 100)
    follow = (
        f"What if the discount were {off2}% instead?",
        f"Sale price: {money(price)} × {(100 - off2) / 100:g} = {money(sale2)}.\nWith {tax}% "
        f"tax: {money(sale2)} × {1 + tax / 100:g} = {money(final2)}.\n\n**Answer:** "
        f"{money(final2)}",
    )
    return Problem(question, solution, follow)


def population(rng: random.Random) -> Problem:
    place = rng.choice(
        ["Lakeside", "Port Ellen", "Millbrook", "Cedar Falls", "Nordby", "San Telmo", "Ashford"]
    )
    start, year = rng.randint(2_000, 250_000), rng.randint(1990, 2015)
    end, later = int(start * rng.uniform(0.7, 1.6)), year + rng.randint(3, 12)
    change = Fraction(end - start, start) * 100
    word = "increase" if end >= start else "decrease"
    question = (
        f"{place} had {start:,} residents in {year} and {end:,} in {later}. What was "
        "the percentage change?"
    )
    solution = (
        f"Change = {end:,} − {start:,} = {end - start:,}.\nPercentage change = "
        f"{end - start:,} ÷ {start:,} × 100 ≈ {float(change):.2f}%.\n\n"
        f"**Answer:** a {abs(float(change)):.1f}% {word}"
    )
    return Problem(question, solution)


def average(rng: random.Random) -> Problem:
    name = rng.choice(NAMES)
    scores = [rng.randint(55, 98) for _ in range(rng.randint(3, 6))]
    mean = Fraction(sum(scores), len(scores))
    listed = ", ".join(map(str, scores[:-1])) + f" and {scores[-1]}"
    question = f"{name} scored {listed} on {len(scores)} quizzes. What is the mean score?"
    solution = (
        f"Sum = {' + '.join(map(str, scores))} = {sum(scores)}.\nMean = {sum(scores)} ÷ "
        f"{len(scores)} = {float(mean):.2f}.\n\n"
        f"**Answer:** {float(mean):.2f}"
    )
    target = min(95, int(mean) + rng.randint(1, 4))
    needed = target * (len(scores) + 1) - sum(scores)
    follow = None
    if 0 < needed <= 100:
        follow = (
            f"What score does {name} need on the next quiz to bring the mean to {target}?",
            f"For a mean of {target} over {len(scores) + 1} quizzes the total must be "
            f"{target} × {len(scores) + 1} = {target * (len(scores) + 1)}.\n"
            f"Needed = {target * (len(scores) + 1)} − {sum(scores)} = {needed}.\n\n"
            f"**Answer:** {needed}",
        )
    return Problem(question, solution, follow)


def garden(rng: random.Random) -> Problem:
    length, width = rng.randint(4, 60), rng.randint(3, 40)
    shape = rng.choice(["garden", "playground", "parking lot", "vegetable patch", "courtyard"])
    question = rng.choice(
        [
            f"A rectangular {shape} is {length} m long and {width} m wide. How much fencing "
            "is needed to go around it, and what is its area?",
            f"Find the perimeter and the area of a rectangular {shape} measuring {length} m "
            f"by {width} m.",
        ]
    )
    perimeter, area = 2 * (length + width), length * width
    solution = (
        f"Perimeter = 2 × ({length} + {width}) = {perimeter} m.\nArea = {length} × {width} = "
        f"{area} m².\n\n"
        f"**Answer:** {perimeter} m of fencing; area {area} m²"
    )
    cost = dec(rng.uniform(4, 35))
    follow = (
        f"Fencing costs {money(cost)} per metre. What does the fence cost?",
        f"Cost = {perimeter} × {money(cost)} = {money(perimeter * cost)}.\n\n**Answer:** "
        f"{money(perimeter * cost)}",
    )
    return Problem(question, solution, follow)


def compound_interest(rng: random.Random) -> Problem:
    name, principal = (
        rng.choice(NAMES),
        rng.choice([500, 1200, 2500, 4000, 7500, 10000, 15000]) + rng.randint(0, 40) * 25,
    )
    rate, years = rng.choice([1.5, 2, 2.5, 3, 3.75, 4, 4.5, 5, 6]), rng.randint(2, 6)
    balance, lines = Decimal(principal), []
    for year in range(1, years + 1):
        balance = dec(balance * (1 + Decimal(str(rate)) / 100))
        lines.append(f"After year {year}: {money(balance)}")
    question = (
        f"{name} deposits {money(principal)} in an account paying {rate}% interest "
        "compounded annually. "
        f"How much is in the account after {years} years?"
    )
    solution = (
        f"Multiply by {1 + rate / 100:g} each year (rounding to cents):\n"
        + "\n".join(lines)
        + f"\n\n**Answer:** {money(balance)}"
    )
    follow = (
        "How much of that is interest?",
        f"Interest = {money(balance)} − {money(principal)} = {money(balance - principal)}.\n"
        f"\n**Answer:** {money(balance - principal)}",
    )
    return Problem(question, solution, follow)


def pipes(rng: random.Random) -> Problem:
    a, b = rng.sample(range(2, 15), 2)
    together = Fraction(a * b, a + b)
    h, m = divmod(round(float(together) * 60), 60)
    question = rng.choice(
        [
            f"One pipe fills a tank in {a} hours and a second pipe fills it in {b} hours. "
            "How long does it take with both pipes open?",
            f"{rng.choice(NAMES)} can paint a fence in {a} hours and {rng.choice(NAMES)} can "
            f"paint it in {b} hours. Working together, how long will it take?",
        ]
    )
    solution = (
        f"Rates: 1/{a} and 1/{b} of the job per hour.\nCombined rate = 1/{a} + 1/{b} = "
        f"{Fraction(1, a) + Fraction(1, b)} per hour.\n"
        f"Time = 1 ÷ {Fraction(1, a) + Fraction(1, b)} = {together} h ≈ {h} h {m} min.\n\n"
        f"**Answer:** about {h} h {m} min"
    )
    return Problem(question, solution)


def ratio_split(rng: random.Random) -> Problem:
    people = rng.sample(NAMES, 3)
    parts = [rng.randint(1, 7) for _ in range(3)]
    total = sum(parts) * rng.randint(5, 400)
    share = total // sum(parts)
    question = (
        f"{people[0]}, {people[1]} and {people[2]} share {money(total)} in the ratio "
        f"{parts[0]}:{parts[1]}:{parts[2]}. How much does each person get?"
    )
    lines = [
        f"{p}: {k} × {money(share)} = {money(k * share)}"
        for p, k in zip(people, parts, strict=True)
    ]
    solution = (
        f"Total parts = {' + '.join(map(str, parts))} = {sum(parts)}.\nOne part = "
        f"{money(total)} ÷ {sum(parts)} = {money(share)}.\n"
        + "\n".join(lines)
        + "\n\n**Answer:** "
        + ", ".join(f"{p} {money(k * share)}" for p, k in zip(people, parts, strict=True))
    )
    return Problem(question, solution)


def recipe(rng: random.Random) -> Problem:
    base, wanted = rng.choice([2, 4, 6, 8]), rng.choice([3, 5, 9, 10, 12, 15])
    flour, eggs = Fraction(rng.randint(2, 12), 4), rng.randint(1, 4)
    scale = Fraction(wanted, base)
    new_flour, new_eggs = flour * scale, eggs * scale
    question = (
        f"A recipe for {base} servings uses {flour} cups of flour and {eggs} eggs. "
        f"How much flour and how many eggs are needed for {wanted} servings?"
    )
    eggs_text = (
        f"{new_eggs}"
        if new_eggs.denominator == 1
        else f"{new_eggs} ≈ {float(new_eggs):.2f}, so round up to "
        f"{-(-new_eggs.numerator // new_eggs.denominator)}"
    )
    solution = (
        f"Scale factor = {wanted} ÷ {base} = {scale}.\nFlour: {flour} × {scale} = "
        f"{new_flour} cups (≈ {float(new_flour):.2f}).\n"
        f"Eggs: {eggs} × {scale} = {eggs_text}.\n\n**Answer:** {float(new_flour):.2f} cups "
        f"of flour and {-(-new_eggs.numerator // new_eggs.denominator)} eggs"
    )
    return Problem(question, solution)


def ages(rng: random.Random) -> Problem:
    older, younger = rng.sample(NAMES, 2)
    child, factor, years = rng.randint(3, 20), rng.randint(2, 4), rng.randint(2, 15)
    parent = factor * child
    total = parent + child + 2 * years
    question = (
        f"{older} is {factor} times as old as {younger}. In {years} years, the sum of their "
        f"ages will be {total}. "
        f"How old are they now?"
    )
    solution = (
        f"Let {younger}'s age be x, so {older} is {factor}x.\nIn {years} years: (x + "
        f"{years}) + ({factor}x + {years}) = {total}.\n"
        f"{factor + 1}x + {2 * years} = {total}, so {factor + 1}x = {total - 2 * years} and "
        f"x = {child}.\n\n"
        f"**Answer:** {younger} is {child} and {older} is {parent}"
    )
    return Problem(question, solution)


def unit_price(rng: random.Random) -> Problem:
    product = rng.choice(["coffee", "rice", "olive oil", "cereal", "dog food", "detergent"])
    unit = "ml" if product in ("olive oil", "detergent") else "g"
    w1, w2 = rng.choice([250, 340, 400, 500, 750]), rng.choice([900, 1000, 1200, 1500, 2000])
    p1, p2 = dec(rng.uniform(2, 9)), dec(rng.uniform(5, 20))
    u1, u2 = dec(p1 / w1 * 100), dec(p2 / w2 * 100)
    better = "the smaller pack" if p1 / w1 < p2 / w2 else "the larger pack"
    question = (
        f"A {w1} {unit} pack of {product} costs {money(p1)} and a {w2} {unit} pack costs "
        f"{money(p2)}. "
        f"Which is the better deal?"
    )
    solution = (
        f"Price per 100 {unit}:\nSmall: {money(p1)} ÷ {w1} × 100 ≈ {money(u1)}\nLarge: "
        f"{money(p2)} ÷ {w2} × 100 ≈ {money(u2)}\n\n"
        f"**Answer:** {better} is cheaper per 100 {unit}"
    )
    return Problem(question, solution)
