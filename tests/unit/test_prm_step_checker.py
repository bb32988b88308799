"""The rule-based step checker and its safe evaluator: claims found in
prose (in symbols and in words) and checked exactly, grounded in the
problem's numbers, the answer judged against the work, and hostile input
refused fast."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest

from ponder.core.scoring import Solution
from ponder.prm.arithmetic import Rejected, evaluate
from ponder.prm.quantities import stated_numbers
from ponder.prm.step_checker import StepChecker, find_claims, grade

# CPU seconds of the test's own thread: a blow-up (9**9**9 computed) takes
# minutes of them, a linear scan well under one, however busy the machine.
FAST_S = 2.0


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


def _level(step: str) -> str:
    """A step's verdict on its own claims: the step is its own question, so
    every number in it is given and only the arithmetic decides."""
    return grade(step, [step])[0].name


def _levels(question: str, steps: list[str], answer: str | None = None) -> list[str]:
    return [level.name for level in grade(question, steps, answer)]


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
    started = time.thread_time()
    with pytest.raises(Rejected):
        evaluate(hostile)
    assert time.thread_time() - started < FAST_S
    started = time.thread_time()
    assert _levels("", [f"So {hostile} = 1."]) == ["no claim"]  # unverifiable, not wrong
    assert time.thread_time() - started < FAST_S


@pytest.mark.parametrize(
    "hostile",
    [
        "1 + 1 = 2, " * 100_000,  # a megabyte of claims
        "1 " + " " * 1_000_000 + "is 5",  # whitespace where a said "=" might be
        "1 (" + "a" * 1_000_000,  # an endless label
        "5" + " apples" * 150_000 + " = 5",
        "multiply " * 100_000 + "2 by 3",
    ],
)
def test_a_megabyte_step_is_graded_in_linear_time(hostile: str) -> None:
    started = time.thread_time()
    grade("What is 1 + 1?", [hostile])
    assert time.thread_time() - started < 2 * FAST_S


def test_a_hundred_thousand_steps_cost_no_more_than_the_claims_read() -> None:
    started = time.thread_time()
    levels = grade("What is 1 + 1?", ["1 + 1 = 2"] * 100_000, "2")
    assert time.thread_time() - started < 2 * FAST_S
    assert levels[0].name == "grounded" and levels[-1].name == "answer supported"


@pytest.mark.parametrize(
    ("step", "level"),
    [
        ("She buys 3 + 4 = 7 apples.", "grounded"),
        ("She buys 3 + 4 = 8 apples.", "wrong claim"),
        ("First we find how many apples she has in total.", "no claim"),
        ("2+3=5=10/2", "grounded"),
        ("2+3=5=11/2", "wrong claim"),
        ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.", "grounded"),
        ("Natalia sold 48/2 = <<48/2=23>>23 clips in May.", "wrong claim"),
        ("The total is $1,200 + $350 = $1,550.", "grounded"),
        ("The total is 1,200 + 350 = 1,500.", "wrong claim"),
        ("Each box holds 12 x 4 = 48 eggs.", "grounded"),
        ("Each box holds 12 × 4 = 46 eggs.", "wrong claim"),
        ("The change is -5 + 3 = -2 degrees.", "grounded"),
        ("Each gets 7/3 = 2.33 pies.", "grounded"),
        ("Each gets 7/3 = 2.3 pies.", "grounded"),
        ("Each gets 7/3 = 2.4 pies.", "wrong claim"),
        ("Each gets 7/3 = 2 pies.", "wrong claim"),  # an integer is not a rounding
        ("The ratio is 1/3 = 0.3333333333.", "grounded"),  # within 1e-6
        ("Half is 5 / 0 = 0.", "wrong claim"),
        ("The answer is 5. Check: 3 + 4 = 7.", "grounded"),
        ("(so 3 + 4 = 7)", "grounded"),
        ("1. 3 * 4 = 12", "grounded"),
        ("3 + 4 = 7\n8 * 2 = 16", "grounded"),
        ("3 + 4 = 7\n8 * 2 = 17", "wrong claim"),
        ("Let x = 5, then 2x = 10.", "no claim"),
        ("2/3 of 9 = 6 cookies.", "no claim"),  # not the false claim 9 = 6
        ("20% of 50 = 10 people.", "no claim"),
        ("5 + 5 = 20% of the total.", "no claim"),  # not the false claim 5 + 5 = 20
        ("2 + 2 = 4, which is 8 less than 12.", "grounded"),  # not 4 = 8
        ("12 = 12", "no claim"),  # a restatement computes nothing
        ("12 = 13", "wrong claim"),
        # Arithmetic said in words is a claim like any other.
        ("2 * 7 equals 14.", "grounded"),
        ("2 * 7 is 15.", "wrong claim"),
        ("3 + 3 = 2 times 3.", "grounded"),
        ("We multiply 9 by 9, which gives us 81.", "grounded"),
        ("Dividing 25 apples by 5 friends gives 5.", "grounded"),
        ("Subtract 3 from 11 to get 9.", "wrong claim"),
        ("Add 9 and 8, which results in 17.", "grounded"),
        ("24 stickers / 4 friends = 6 stickers/pair", "grounded"),
        ("11 (apples) + 5 (new ones) = 16 (in all)", "grounded"),
        ("Step 1 is 5 apples.", "no claim"),  # "is" after no computation claims nothing
        ("Multiply 9 by itself 9 times.", "no claim"),
    ],
)
def test_claims_hold_or_not(step: str, level: str) -> None:
    assert _level(step) == level


def test_find_claims_reads_annotations_and_chains() -> None:
    claims = find_claims("He pays 2*3 = <<2*3=6>>6 dollars, so 6+4=10=20/2 in all.")
    assert [c.sides for c in claims] == [("2*3", "6"), ("2*3", "6"), ("6+4", "10", "20/2")]


QUESTION = "Zoe has 6 apples and gives away 18. What is 6 - 18?"


def test_a_grounded_supported_answer_reaches_the_top() -> None:
    assert _levels(QUESTION, ["6 - 18 = -12"], "-12") == ["answer supported"]
    assert _levels(QUESTION, ["First we subtract.", "6 - 18 = -12", "So the answer is -12."],
                   "-12") == ["no claim", "grounded", "answer supported"]


def test_a_right_answer_with_no_work_is_unsupported() -> None:
    assert _levels(QUESTION, ["The answer is -12."], "-12") == ["unsupported answer"]


def test_a_right_claim_with_an_unrelated_answer_is_unsupported() -> None:
    assert _levels(QUESTION, ["6 - 18 = -12. The answer is 9."], "9") == ["unsupported answer"]


def test_true_claims_from_numbers_that_appear_nowhere_are_ungrounded() -> None:
    assert _levels(QUESTION, ["2 + 2 = 4"]) == ["ungrounded"]
    assert _levels(QUESTION, ["7 * 3 = 21. The answer is 21."], "21") == ["ungrounded"]
    # A result computed from ungrounded work is ungrounded too.
    assert _levels(QUESTION, ["7 * 3 = 21", "21 + 6 = 27"]) == ["ungrounded", "ungrounded"]


def test_numbers_written_as_words_ground_the_work() -> None:
    question = "Tom has three bags with a dozen apples each. How many apples?"
    assert _levels(question, ["3 x 12 = 36 apples."], "36") == ["answer supported"]
    question = "Half of the twenty-four pupils walk home. How many walk?"
    assert _levels(question, ["24 / 2 = 12"], "12") == ["answer supported"]
    question = "A film lasts two hours. How many minutes is that?"
    assert _levels(question, ["2 * 60 = 120 minutes"], "120") == ["answer supported"]


def test_an_answer_that_leaves_out_a_given_number_is_partial() -> None:
    question = "Tom buys 2 packs of 7 pencils and already had 8. How many pencils now?"
    assert _levels(question, ["2 x 7 = 14 pencils. Tom has 14."], "14") == ["partial answer"]
    assert _levels(question, ["7 * 2 = 14 pencils.", "14 + 8 = 22"], "22") == [
        "grounded", "answer supported"]


def test_an_identity_computes_nothing_new() -> None:
    question = "Zoe had 9 cookies and gave away 1. How many are left?"
    assert _levels(question, ["9 x 1 = 9 cookies"], "9") == ["unsupported answer"]
    assert _levels(question, ["9 - 9 = 0 cookies"], "0") == ["unsupported answer"]
    # ...but it still carries what it was computed from.
    assert _levels("What is 1 * 6 - 5?", ["1 * 6 = 6", "6 - 5 = 1"], "1") == [
        "no claim", "answer supported"]


def test_a_rounded_answer_matches_the_exact_result() -> None:
    assert _levels("Share 7 pies among 3.", ["7 / 3 = 2.33"], "2.33") == ["answer supported"]
    assert _levels("Share 1 pie among 2.", ["1 / 2 = 0.5"], "\\frac{1}{2}") == [
        "answer supported"]


def test_a_wrong_claim_sinks_the_step_whatever_the_answer() -> None:
    assert _levels(QUESTION, ["6 - 18 = 12"], "12") == ["wrong claim"]


def test_a_partial_solution_is_judged_on_its_claims_alone() -> None:
    steps = ["6 - 18 = -12", "Then we double it."]
    full = _levels(QUESTION, steps)
    assert full == ["grounded", "no claim"]
    # Causal: a step's level does not change when later steps come.
    assert _levels(QUESTION, steps[:1]) == full[:1]


async def test_the_checker_scores_only_new_steps_and_names_every_level() -> None:
    solutions = [
        Solution(("6 - 18 = -12", "The answer is -12."), known=(0.7,), answer="-12"),
        Solution(("2 + 2 = 4", "The answer is 9."), answer="9"),
        Solution(()),
    ]
    scored = await StepChecker().score(QUESTION, solutions)
    assert scored.scores == [[0.7, 1.0], [0.25, 0.25], []]  # the known score is kept
    assert scored.labels == [["grounded", "answer supported"],
                             ["ungrounded", "unsupported answer"], []]
    assert scored.tokens == 0


@pytest.mark.parametrize(
    ("text", "given", "implied"),
    [
        ("Tom has 3 apples and $1,200.50.", {3, Fraction(2401, 2)}, set()),
        ("Tom has three apples and twenty-five pears.", {3, 25}, set()),
        ("three and four", {3, 4}, set()),  # two numbers, not 7
        ("one hundred and five", {105}, {1, 100}),
        ("two dozen eggs", {24}, {2, 12}),
        ("Each one of them walks half an hour.", set(), {1, 2, Fraction(1, 2), 60, 24}),
    ],
)
def test_the_numbers_a_problem_states(text: str, given: set, implied: set) -> None:
    stated = stated_numbers(text)
    assert stated.given == given
    assert stated.implied == implied
