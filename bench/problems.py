"""Problem sets for the accuracy benchmark.

The generated arithmetic set sits at the edge of what the embedded 135M
model can do (one operation on small numbers, then two), where test-time
compute can show what it buys; GSM8K is out of its reach. Any JSONL of
``{question, answer}`` works too, GSM8K's ``#### <number>`` answers included.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Level = Literal["one-op", "two-op"]
LEVELS: tuple[Level, ...] = ("one-op", "two-op")


@dataclass(frozen=True)
class Problem:
    question: str
    answer: str


Maker = Callable[[random.Random], Problem]

_NAMES = ("Tom", "Sara", "Ali", "Mia", "Ken", "Lena", "Omar", "Zoe")
_THINGS = ("apples", "pencils", "stickers", "marbles", "cookies", "books")


def _expression(rng: random.Random) -> Problem:
    op = rng.choice("+-*")
    a, b = (rng.randint(2, 12), rng.randint(2, 12)) if op == "*" else (
        rng.randint(1, 30), rng.randint(1, 30))
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    wording = rng.choice(("What is {e}?", "Compute {e}.", "Calculate {e}."))
    return Problem(wording.format(e=f"{a} {op} {b}"), str(value))


def _one_step_story(rng: random.Random) -> Problem:
    name, thing = rng.choice(_NAMES), rng.choice(_THINGS)
    kind = rng.choice(("more", "less", "groups", "share"))
    if kind == "more":
        a, b = rng.randint(2, 20), rng.randint(2, 20)
        return Problem(f"{name} has {a} {thing} and gets {b} more. How many {thing} does "
                       f"{name} have now?", str(a + b))
    if kind == "less":
        a = rng.randint(5, 30)
        b = rng.randint(1, a - 1)
        return Problem(f"{name} had {a} {thing} and gave away {b}. How many {thing} are left?",
                       str(a - b))
    if kind == "groups":
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        return Problem(f"There are {a} bags with {b} {thing} in each bag. How many {thing} "
                       "are there in total?", str(a * b))
    each, people = rng.randint(2, 9), rng.randint(2, 6)
    return Problem(f"{name} shares {each * people} {thing} equally among {people} friends. "
                   f"How many {thing} does each friend get?", str(each))


def _two_op_expression(rng: random.Random) -> Problem:
    a, b, c = rng.randint(1, 12), rng.randint(1, 12), rng.randint(2, 9)
    form = rng.choice(("{a} + {b} * {c}", "({a} + {b}) * {c}", "{a} * {c} - {b}",
                       "{a} + {b} - {c}"))
    expression = form.format(a=a, b=b, c=c)
    value = _evaluate(a, b, c, form)
    return Problem(f"What is {expression}?", str(value))


def _evaluate(a: int, b: int, c: int, form: str) -> int:
    return {
        "{a} + {b} * {c}": a + b * c,
        "({a} + {b}) * {c}": (a + b) * c,
        "{a} * {c} - {b}": a * c - b,
        "{a} + {b} - {c}": a + b - c,
    }[form]


def _two_step_story(rng: random.Random) -> Problem:
    name, thing = rng.choice(_NAMES), rng.choice(_THINGS)
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 10)
    if rng.random() < 0.5:
        return Problem(f"{name} buys {a} packs of {b} {thing} and already had {c}. How many "
                       f"{thing} does {name} have now?", str(a * b + c))
    start = a * b + c
    return Problem(f"{name} had {start} {thing}, gave {a} friends {b} each. How many {thing} "
                   f"does {name} have left?", str(start - a * b))


_MAKERS: dict[Level, tuple[Maker, ...]] = {
    "one-op": (_expression, _one_step_story),
    "two-op": (_two_op_expression, _two_step_story),
}


def generated(level: Level, count: int = 300, seed: int = 0) -> list[Problem]:
    """A fixed, seeded set: the same problems on every run and machine."""
    rng = random.Random(f"{level}-{seed}")
    makers = _MAKERS[level]
    return [makers[i % len(makers)](rng) for i in range(count)]


def from_jsonl(path: Path, count: int | None = None) -> list[Problem]:
    problems = []
    with path.open() as lines:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            answer = str(row["answer"])
            if "####" in answer:  # GSM8K: worked solution, then "#### <number>"
                answer = answer.rsplit("####", 1)[1].strip().replace(",", "")
            problems.append(Problem(str(row["question"]), answer))
            if count is not None and len(problems) >= count:
                break
    return problems
