"""A generator of one-to-three-step arithmetic word problems with gold steps and answers.

Seeded and varied: names, items, units and containers, and a chain of one to three
operations (addition, subtraction, multiplication, division, rates and prices), each
with several phrasings. Gold steps are written the way the policy's prompt asks (one
calculation per step, "a op b = c", then "The answer is N."), so they are also the
material for step perturbations (processbench.py). Every value stays a positive integer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = [
    "Sam",
    "Mia",
    "Tom",
    "Ana",
    "Leo",
    "Zoe",
    "Ben",
    "Ivy",
    "Max",
    "Eva",
    "Noah",
    "Lily",
    "Omar",
    "Rosa",
    "Kai",
    "Nina",
    "Raj",
    "Sofia",
    "Eli",
    "Maya",
    "Jon",
    "Ada",
    "Luis",
    "Hana",
]
PRONOUNS = {"he": ["Sam", "Tom", "Leo", "Ben", "Max", "Noah", "Omar", "Kai", "Raj", "Eli", "Jon", "Luis"]}
ITEMS = [
    ("apple", "apples"),
    ("pen", "pens"),
    ("marble", "marbles"),
    ("sticker", "stickers"),
    ("book", "books"),
    ("cookie", "cookies"),
    ("card", "cards"),
    ("shell", "shells"),
    ("egg", "eggs"),
    ("toy car", "toy cars"),
    ("crayon", "crayons"),
    ("flower", "flowers"),
    ("stamp", "stamps"),
    ("bead", "beads"),
    ("orange", "oranges"),
]
CONTAINERS = [
    ("box", "boxes"),
    ("bag", "bags"),
    ("jar", "jars"),
    ("basket", "baskets"),
    ("pack", "packs"),
    ("tray", "trays"),
    ("crate", "crates"),
]
PRICED = [
    ("notebook", "notebooks"),
    ("sandwich", "sandwiches"),
    ("ticket", "tickets"),
    ("ball", "balls"),
    ("kite", "kites"),
    ("mug", "mugs"),
    ("plant", "plants"),
    ("puzzle", "puzzles"),
]
RATES = [
    ("pages", "reads", "day", "days"),
    ("miles", "runs", "week", "weeks"),
    ("cups of water", "drinks", "day", "days"),
    ("songs", "practices", "week", "weeks"),
    ("laps", "swims", "day", "days"),
]


@dataclass(frozen=True)
class SynthProblem:
    id: str
    question: str
    steps: tuple[str, ...]  # gold steps, the last one "The answer is N."
    answer: str


def _pronoun(name: str) -> str:
    return "he" if name in PRONOUNS["he"] else "she"


class _Builder:
    """Builds a problem sentence by sentence and its gold steps calculation by calculation."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.name = rng.choice(NAMES)
        self.he = _pronoun(self.name)
        self.sentences: list[str] = []
        self.steps: list[str] = []

    def number(self, low: int, high: int, avoid: set[int] = frozenset()) -> int:
        for _ in range(50):
            value = self.rng.randint(low, high)
            if value not in avoid:
                return value
        return high + 1

    def pick(self, *options: str) -> str:
        return self.rng.choice(options)


def _start_count(b: _Builder, item) -> int:
    start = b.number(5, 60)
    b.sentences.append(
        b.pick(
            f"{b.name} has {start} {item[1]}.",
            f"{b.name} starts with {start} {item[1]}.",
            f"There are {start} {item[1]} in {b.name}'s room.",
        )
    )
    return start


def _start_groups(b: _Builder, item) -> int:
    groups, each = b.number(2, 9), b.number(2, 12)
    container = b.rng.choice(CONTAINERS)
    total = groups * each
    b.sentences.append(
        b.pick(
            f"{b.name} has {groups} {container[1]} with {each} {item[1]} in each {container[0]}.",
            f"{b.name} buys {groups} {container[1]} of {item[1]}. Each {container[0]} holds {each} {item[1]}.",
        )
    )
    b.steps.append(
        b.pick(
            f"{b.name} has {groups} * {each} = {total} {item[1]}.",
            f"{groups} {container[1]} hold {groups} * {each} = {total} {item[1]}.",
        )
    )
    return total


def _add(b: _Builder, item, value: int) -> int:
    extra = b.number(2, 30, {value})
    b.sentences.append(
        b.pick(
            f"Then {b.he} gets {extra} more {item[1]}.",
            f"A friend gives {b.name} {extra} {item[1]}.",
            f"{b.he.capitalize()} finds {extra} more {item[1]}.",
        )
    )
    new = value + extra
    b.steps.append(
        b.pick(
            f"After getting {extra} more, {b.name} has {value} + {extra} = {new} {item[1]}.",
            f"{value} + {extra} = {new} {item[1]}.",
        )
    )
    return new


def _subtract(b: _Builder, item, value: int) -> int:
    if value < 4:
        return _add(b, item, value)
    lost = b.number(1, max(1, value - 2), {value})
    b.sentences.append(
        b.pick(
            f"{b.he.capitalize()} gives away {lost} {item[1]}.",
            f"{b.he.capitalize()} loses {lost} {item[1]}.",
            f"{b.name} uses {lost} of the {item[1]}.",
        )
    )
    new = value - lost
    b.steps.append(
        b.pick(
            f"After that, {b.name} has {value} - {lost} = {new} {item[1]}.",
            f"{value} - {lost} = {new} {item[1]} are left.",
        )
    )
    return new


def _multiply(b: _Builder, item, value: int) -> int:
    if value > 200:
        return _subtract(b, item, value)
    factor = b.number(2, 5)
    word = {2: "twice", 3: "three times", 4: "four times", 5: "five times"}[factor]
    other = b.rng.choice([n for n in NAMES if n != b.name])
    b.sentences.append(f"{other} has {word} as many {item[1]} as {b.name}.")
    new = value * factor
    b.steps.append(
        b.pick(f"{other} has {value} * {factor} = {new} {item[1]}.", f"{value} * {factor} = {new} {item[1]}.")
    )
    b.name = other  # the question is now about the other person
    b.he = _pronoun(other)
    return new


def _divide(b: _Builder, item, value: int) -> int | None:
    divisors = [d for d in range(2, 10) if value % d == 0 and value // d > 1]
    if not divisors:
        return None
    parts = b.rng.choice(divisors)
    b.sentences.append(
        b.pick(
            f"{b.he.capitalize()} shares them equally among {parts} friends.",
            f"{b.he.capitalize()} puts them into {parts} equal piles.",
        )
    )
    new = value // parts
    b.steps.append(b.pick(f"Each gets {value} / {parts} = {new} {item[1]}.", f"{value} / {parts} = {new} {item[1]}."))
    return new


def _counting(b: _Builder) -> tuple[str, int]:
    item = b.rng.choice(ITEMS)
    value = (_start_groups if b.rng.random() < 0.4 else _start_count)(b, item)
    ops = b.rng.randint(0 if b.steps else 1, 2)
    divided = False
    for _ in range(ops):
        op = b.rng.choice([_add, _subtract, _subtract, _multiply])
        value = op(b, item, value)
    if b.rng.random() < 0.25:
        shared = _divide(b, item, value)
        if shared is not None:
            value, divided = shared, True
    question = (
        f"How many {item[1]} does each friend get?"
        if divided and "friends" in b.sentences[-1]
        else f"How many {item[1]} are in each pile?"
        if divided
        else b.pick(f"How many {item[1]} does {b.name} have now?", f"How many {item[1]} does {b.name} have?")
    )
    return question, value


def _shopping(b: _Builder) -> tuple[str, int]:
    item = b.rng.choice(PRICED)
    price, count = b.number(2, 15), b.number(2, 9)
    b.sentences.append(b.pick(f"A {item[0]} costs ${price}.", f"Each {item[0]} costs {price} dollars."))
    b.sentences.append(f"{b.name} buys {count} {item[1]}.")
    cost = price * count
    b.steps.append(f"{count} {item[1]} cost {count} * {price} = {cost} dollars.")
    kind = b.rng.random()
    if kind < 0.4:
        paid = b.number(cost + 1, cost + 40)
        b.sentences.append(f"{b.he.capitalize()} pays with ${paid}.")
        change = paid - cost
        b.steps.append(f"The change is {paid} - {cost} = {change} dollars.")
        return "How much change does " + b.he + " get?", change
    if kind < 0.7:
        other, extra = b.rng.choice([p for p in PRICED if p != item]), b.number(2, 20)
        b.sentences.append(f"{b.he.capitalize()} also buys a {other[0]} for ${extra}.")
        total = cost + extra
        b.steps.append(f"In total {b.he} spends {cost} + {extra} = {total} dollars.")
        return "How much does " + b.he + " spend in total?", total
    return f"How much do the {item[1]} cost?", cost


def _rate(b: _Builder) -> tuple[str, int]:
    what, verb, unit, units = b.rng.choice(RATES)
    per, count = b.number(2, 25), b.number(2, 8)
    b.sentences.append(f"{b.name} {verb} {per} {what} each {unit}.")
    total = per * count
    b.steps.append(f"In {count} {units}, {b.name} {verb} {per} * {count} = {total} {what}.")
    if b.rng.random() < 0.5:
        extra = b.number(2, 20)
        b.sentences.append(f"On the last {unit}, {b.he} {verb} {extra} more {what}.")
        total2 = total + extra
        b.steps.append(f"With the extra ones, that is {total} + {extra} = {total2} {what}.")
        return f"How many {what} does {b.name} do in {count} {units}?".replace(" do in", " get through in"), total2
    return f"How many {what} in {count} {units}?", total


def generate(count: int, seed: int, prefix: str = "synth") -> list[SynthProblem]:
    """`count` distinct problems from `seed` (another seed gives another, disjoint-in-practice set)."""
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < count:
        b = _Builder(rng)
        question, answer = rng.choice([_counting, _counting, _shopping, _rate])(b)
        text = " ".join(b.sentences) + " " + question
        if text in seen or not b.steps or answer <= 0:
            continue
        seen.add(text)
        out.append(
            SynthProblem(
                f"{prefix}-{seed}-{len(out)}", text, tuple(b.steps) + (f"The answer is {answer}.",), str(answer)
            )
        )
    return out
