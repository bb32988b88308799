"""Answer extraction and voting: each format over tricky strings, equivalence
classes, and linear time on adversarial megabyte inputs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from ponder.core import answers
from ponder.core.answers import AnswerFormat, answers_equivalent
from ponder.strategies.answers import extract_answer
from ponder.strategies.voting import VoteBook


def tally(
    answers: list[str | None], answer_format: AnswerFormat = "auto"
) -> list[tuple[str, list[int]]]:
    """Classes as the voters build them, one answer at a time."""
    book = VoteBook(answer_format)
    for index, answer in enumerate(answers):
        book.add(index, answer)
    return [(c.answer, c.members) for c in book.classes]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so the total is \\boxed{42}. Check: 6*7=42, 1 more step", "42"),
        ("\\boxed{1} at first, then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\dfrac{3}{4}} and then 9", "\\frac{3}{4}"),
        ("nested \\boxed{\\text{x} \\in \\{1, 2\\}} end", "\\text{x} \\in \\{1, 2\\}"),
        ("\\boxed{2} but cut off: \\boxed{3", "2"),
        ("\\boxed{1,000}", "1000"),
        ("Steps 1 and 2.\nAnswer: $5", "5"),
        ("Steps.\n**Answer:** 12 apples.", "12"),
        ("Answer: 3\nlater Final answer:\n  −12", "-12"),
        ("answer: x = 7", "7"),
        ("Answer: 12 (since 3 x 4)", "12"),
        ("Answer: 90^\\circ", "90"),
        ("Answer: \\frac{1}{2}", "\\frac{1}{2}"),
        ("Answer: 2\\pi", "2\\pi"),
        ("Answer: Paris", "Paris"),
        ("Answer:\n\nso 4", "4"),
        ("15 + 4 = 19 pencils.\n#### 19\nSara has 19.", "19"),
        ("Room #### 4 is not a marker; 3 + 4 = 7", "7"),
        ("I think the answer is 3.5. Then 8 more", "3.5"),
        ("The final answer is: 3/4", "3/4"),
        ("We computed 1,000 and then 12 apples.", "12"),
        ("It costs $5", "5"),
        ("There were 1,000,000 people", "1000000"),
        ("it drops to -12 degrees", "-12"),
        ("it drops to −12 degrees", "-12"),
        ("5-4", "4"),
        ("about .5 of it", "0.5"),
        ("a ratio of 3/4", "3/4"),
        ("half is \\frac{1}{2}", "\\frac{1}{2}"),
        ("no digits at all", None),
        ("", None),
    ],
)
def test_auto(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "answer_format", "expected"),
    [
        ("Answer: 7 but last is 1,234.", "number", "1234"),
        ("\\boxed{5} and 6", "number", "6"),
        ("-3 then 2.50", "number", "2.50"),
        ("nothing", "number", None),
        ("Answer: 7 and \\boxed{x+1} then 3", "boxed", "x+1"),
        ("\\boxed{a}\\boxed{\\boxed{7}}", "boxed", "7"),
        ("\\boxed{ }", "boxed", None),
        ("Answer: 7", "boxed", None),
        ("So (B)", "choice", "B"),
        ("Answer: C", "choice", "C"),
        ("the answer is d", "choice", "D"),
        ("Answer: The correct option is (E).", "choice", "E"),
        ("\\boxed{A}", "choice", "A"),
        ("Thinking...\n**C.**", "choice", "C"),
        ("(A) is wrong, (B) fits", "choice", "B"),
        ("So we get a result of 5", "choice", None),
        ("Answer: Paris.\nmore", "text", "Paris."),
        ("the answer is Mount Everest. It is tall", "text", "Mount Everest"),
        ("thinking\nThe capital is Paris\n\n", "text", "The capital is Paris"),
        ("   \n  ", "text", None),
    ],
)
def test_explicit_formats(text: str, answer_format: AnswerFormat, expected: str | None) -> None:
    assert extract_answer(text, answer_format) == expected


@pytest.mark.parametrize(
    ("a", "b", "answer_format", "same"),
    [
        ("1/2", "0.5", "auto", True),
        ("\\frac{1}{2}", "0.5", "auto", True),
        ("\\dfrac{1}{2}", "\\frac{1}{2}", "boxed", True),
        ("1,000", "1000", "number", True),
        ("-12", "−12", "auto", True),
        ("x+1", "1+x", "auto", True),
        ("12 apples", "12", "auto", True),
        ("2", "1/2", "auto", False),
        ("Paris", "Sirap", "auto", False),
        ("9^{9^{9}}", "5", "auto", False),
        ("b", "(B)", "choice", True),
        ("B", "C", "choice", False),
        ("Mount  Everest!", "mount everest", "text", True),
        ("Paris", "London", "text", False),
    ],
)
def test_equivalence(a: str, b: str, answer_format: AnswerFormat, same: bool) -> None:
    assert answers_equivalent(a, b, answer_format) is same
    assert answers_equivalent(b, a, answer_format) is same


def test_tally_groups_equivalent_answers_in_first_seen_order() -> None:
    votes = tally(["1/2", "0.5", "\\frac{1}{2}", "2", None, "1,000", "1000"])
    assert votes == [("1/2", [0, 1, 2]), ("2", [3]), ("1000", [5, 6])]
    assert [len(members) for _, members in votes] == [3, 1, 2]


def test_tally_representative_is_the_first_member_normalised() -> None:
    votes = tally([None, "1,000", "7", "1000.0", "−7"])
    assert votes == [("1000", [1, 3]), ("7", [2]), ("-7", [4])]


def test_none_does_not_vote() -> None:
    assert tally([None, None]) == []
    assert tally([None, "B", None, "b"], "choice") == [("B", [1, 3])]


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every string math-verify is asked to parse, from a cold cache."""
    calls: list[str] = []
    real_parse = answers.parse

    def counting_parse(text: str, **kwargs: Any) -> Any:
        calls.append(text)
        return real_parse(text, **kwargs)

    monkeypatch.setattr(answers, "parse", counting_parse)
    answers._parse.cache_clear()
    return calls


SEVEN_CLASSES = ["1", "2", "3", "4", "5", "6", "0.5", "1/2", "2", "0.50"]


def test_tally_parses_each_answer_once(parsed: list[str]) -> None:
    assert len(tally(SEVEN_CLASSES)) == 7
    assert sorted(parsed) == sorted(set(parsed))


def test_pairwise_comparison_parses_each_answer_once(parsed: list[str]) -> None:
    """Voters that call answers_equivalent per pair pay no more parses."""
    representatives: list[str] = []
    for answer in SEVEN_CLASSES:
        if not any(answers_equivalent(r, answer) for r in representatives):
            representatives.append(answer)
    assert representatives == ["1", "2", "3", "4", "5", "6", "0.5"]
    assert sorted(parsed) == sorted(set(parsed))
    assert len(parsed) <= len(set(SEVEN_CLASSES))


def test_tally_works_off_the_main_thread() -> None:
    """math-verify's own timeouts use signal.alarm, which raises here."""
    result: list[list[tuple[str, list[int]]]] = []
    worker = threading.Thread(target=lambda: result.append(tally(["1/2", "0.5", "3"])))
    worker.start()
    worker.join()
    assert result == [[("1/2", [0, 1]), ("3", [2])]]


ADVERSARIAL_UNITS: dict[str, tuple[Any, ...]] = {
    "separated digits": ("1,", 500_000),
    "open boxes": ("\\boxed{", 300_000),
    "open boxes, then a brace": ("\\boxed{", 300_000, "}"),
    "markers": ("Answer:", 150_000),
    "answer is": ("the answer is ", 75_000),
    "digits": ("7", 1_000_000),
    "no digits": ("ab ", 333_334),
    "hash marks": ("####", 250_000),
    "blank lines": ("\n", 1_000_000),
}


def adversarial(name: str, count: int | None = None) -> str:
    unit, whole, *suffix = ADVERSARIAL_UNITS[name]
    return unit * (whole if count is None else count) + "".join(suffix)


ADVERSARIAL = {name: adversarial(name) for name in ADVERSARIAL_UNITS}


def growth(make: Callable[[int], str], run: Callable[[str], object], count: int) -> float:
    """How much longer `run` takes on a text four times as long: about 4 for a
    linear scan, 16 for a quadratic one. The thread's own CPU time, the
    fastest of three each, as a ratio: a busy machine delays the thread but
    does not add to it, where a bound in wall seconds fails on a shared core."""
    texts = make(count // 4), make(count)
    fastest = [float("inf"), float("inf")]
    for _ in range(3):
        for index, text in enumerate(texts):
            start = time.thread_time()
            run(text)
            fastest[index] = min(fastest[index], time.thread_time() - start)
    return fastest[1] / max(fastest[0], 1e-6)


# auto runs the boxed, marker and number scans in turn; choice and text add
# their own.
@pytest.mark.parametrize("answer_format", ["auto", "choice", "text"])
@pytest.mark.parametrize("name", list(ADVERSARIAL_UNITS))
def test_extraction_is_linear(name: str, answer_format: AnswerFormat) -> None:
    assert growth(lambda count: adversarial(name, count),
                  lambda text: extract_answer(text, answer_format),
                  ADVERSARIAL_UNITS[name][1] // 4) < 10


def test_brace_matching_is_linear() -> None:
    """Matching braces is a Python loop over every brace; what is caught here
    is a scan that goes back over them."""
    def boxed_braces(pairs: int) -> str:
        return "\\boxed{" + "{}" * pairs + "}"
    assert extract_answer(boxed_braces(1000), "boxed") == "{}" * 1000
    assert growth(boxed_braces, lambda text: extract_answer(text, "boxed"), 100_000) < 10


def test_adversarial_answers() -> None:
    """What the megabyte inputs yield, so the timing test is not timing an
    early exit."""
    assert extract_answer(ADVERSARIAL["separated digits"]) == "1"
    assert extract_answer(ADVERSARIAL["open boxes"], "boxed") is None
    assert extract_answer(ADVERSARIAL["markers"] + " 9") == "9"
    assert extract_answer(ADVERSARIAL["digits"]) is None
    assert extract_answer(ADVERSARIAL["no digits"]) is None


def test_tally_of_long_answers_compares_exactly() -> None:
    long = "1" * 100
    start = time.thread_time()
    votes = tally([long, long, "1" * 99 + "2"])
    assert time.thread_time() - start < 1.0
    assert votes == [(long, [0, 1]), ("1" * 99 + "2", [2])]
