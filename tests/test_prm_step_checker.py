"""The rule-based step checker and its safe evaluator: claims found in
prose, checked exactly, and hostile input refused fast."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest

from ponder.prm.arithmetic import Rejected, evaluate
from ponder.prm.step_checker import NEUTRAL, StepChecker, check_step, find_claims

from .fakes import as_solutions

FAST_S = 0.5  # "well under a second", on a shared 2-core machine


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("2 + 3 * 4", Fraction(14)),
        ("(2 + 3) * 4", Fraction(20)),
        ("-5 + 3", Fraction(-2)),
        ("7 / 2", Fraction(7, 2)),
        ("0.1 + 0.2", Fraction(3, 10)),
        ("1,234,567 - 1", Fraction(1234566)),
        ("$1,200.50 * 2", Fraction(2401)),
        ("3 x 4", Fraction(12)),
        ("3×4 ÷ 6", Fraction(2)),
        ("10 − 4", Fraction(6)),
        ("2^10", Fraction(1024)),
        ("2**-2", Fraction(1, 4)),
        ("(" * 90 + "1" + ")" * 90, Fraction(1)),
    ],
)
def test_evaluate(expression: str, value: Fraction) -> None:
    assert evaluate(expression) == value


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os')",
        "2 ** 0.5",
        "x + 1",
        "3 % 2",
        "1 +",
        "2(3 + 4)",
        "007",
        "10 ** 1000",
    ],
)
def test_evaluate_rejects_what_is_not_bounded_arithmetic(expression: str) -> None:
    with pytest.raises(Rejected):
        evaluate(expression)


def test_division_by_zero_is_not_a_rejection() -> None:
    with pytest.raises(ZeroDivisionError):
        evaluate("5 / (2 - 2)")


@pytest.mark.parametrize(
    "hostile",
    [
        "9**9**9",
        "2^999999",
        "(" * 10_000 + "1" + ")" * 10_000,
        "1+" * 500_000 + "1",  # 1 MB
        "9" * 150 + "**64",
        "((2**64)**64)**64",
    ],
)
def test_hostile_expressions_are_rejected_fast(hostile: str) -> None:
    started = time.perf_counter()
    with pytest.raises(Rejected):
        evaluate(hostile)
    assert time.perf_counter() - started < FAST_S
    started = time.perf_counter()
    assert check_step(f"So {hostile} = 1.") == NEUTRAL  # unverifiable, not wrong
    assert time.perf_counter() - started < FAST_S


def test_a_megabyte_of_claims_is_checked_fast() -> None:
    step = "1 + 1 = 2, " * 100_000
    started = time.perf_counter()
    assert check_step(step) == 1.0
    assert time.perf_counter() - started < FAST_S


@pytest.mark.parametrize(
    ("step", "score"),
    [
        ("She buys 3 + 4 = 7 apples.", 1.0),
        ("She buys 3 + 4 = 8 apples.", 0.0),
        ("First we find how many apples she has in total.", NEUTRAL),
        ("2+3=5=10/2", 1.0),
        ("2+3=5=11/2", 0.0),
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.", 1.0),
        ("Natalia sold 48/2 = <<48/2=23>>23 clips in May.", 0.0),
        ("The total is $1,200 + $350 = $1,550.", 1.0),
        ("The total is 1,200 + 350 = 1,500.", 0.0),
        ("Each box holds 12 x 4 = 48 eggs.", 1.0),
        ("Each box holds 12 × 4 = 46 eggs.", 0.0),
        ("The change is -5 + 3 = -2 degrees.", 1.0),
        ("Each gets 7/3 = 2.33 pies.", 1.0),
        ("Each gets 7/3 = 2.3 pies.", 1.0),
        ("Each gets 7/3 = 2.4 pies.", 0.0),
        ("Each gets 7/3 = 2 pies.", 0.0),  # an integer is not a rounding
        ("The ratio is 1/3 = 0.3333333333.", 1.0),  # within 1e-6
        ("Half is 5 / 0 = 0.", 0.0),
        ("The answer is 5. Check: 3 + 4 = 7.", 1.0),
        ("(so 3 + 4 = 7)", 1.0),
        ("1. 3 * 4 = 12", 1.0),
        ("3 + 4 = 7\n8 * 2 = 16", 1.0),
        ("3 + 4 = 7\n8 * 2 = 17", 0.0),
        ("Let x = 5, then 2x = 10.", NEUTRAL),
        ("2/3 of 9 = 6 cookies.", NEUTRAL),  # not the false claim 9 = 6
        ("20% of 50 = 10 people.", NEUTRAL),
        ("5 + 5 = 20% of the total.", NEUTRAL),  # not the false claim 5 + 5 = 20
        ("3 + 3 = 2 times 3.", NEUTRAL),
    ],
)
def test_check_step(step: str, score: float) -> None:
    assert check_step(step) == score


def test_find_claims_reads_annotations_and_chains() -> None:
    claims = find_claims("He pays 2*3 = <<2*3=6>>6 dollars, so 6+4=10=20/2 in all.")
    assert [c.sides for c in claims] == [("2*3", "6"), ("2*3", "6"), ("6+4", "10", "20/2")]


async def test_step_checker_scores_every_step_and_reads_no_tokens() -> None:
    solutions = as_solutions(["2 + 2 = 4", "Then we are done.", "4 * 2 = 9"], [], ["10 / 4 = 2.5"])
    scored = await StepChecker().score("What is 2 + 2?", solutions)
    assert scored.scores == [[1.0, NEUTRAL, 0.0], [], [1.0]]
    assert scored.tokens == 0
