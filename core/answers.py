"""When two answers are the same answer: the one rule every part of ponder
groups by.

The vote, ``auto``'s probe, the combined verifier's vote share and
calibration all ask "how many samples gave this answer?", and they must
agree, or the probe and the verifier would see different majorities in the
same samples. So two spellings of one answer (``1/2`` and ``0.5``,
``\\$5`` and ``5 apples``) land in one group here, by one comparison:
normalised forms first, then math-verify's mathematical equivalence.

Each answer format has its own rule: a JSON answer (``json``) and tool
calls (``tool_calls``) are canonical JSON, equal when they parse to the same
value; ``choice`` compares letters, ``text`` compares words (case,
punctuation and spacing aside); ``auto``, ``number`` and ``boxed`` compare
as mathematics.

Answers come from a model and, through the API, from clients, so nothing
here is more than linear in its input, and math-verify (sympy, which
computes ``9^{9^{9}}`` without end) only sees short answers of a safe
shape. Its own timeouts use ``signal.alarm``, which raises outside the main
thread, so they are switched off.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from math_verify import parse, verify

AnswerFormat = Literal["auto", "number", "boxed", "choice", "text", "json", "tool_calls"]
WHOLE_ANSWER_FORMATS = ("json", "tool_calls")
"""Formats whose answer is the whole content of a sample, in canonical form."""
_EXACT_FORMATS = ("choice", "text", *WHOLE_ANSWER_FORMATS)
_MAX_MATH_CHARS = 64
"""Longer than this, an answer is not sent to sympy, whose cost grows with
the expression."""

# Thousands groups are spelled out so that no quantifier sits inside another.
_INTEGER = r"(?:[0-9]{1,3}(?:,[0-9][0-9][0-9])+(?![0-9])|[0-9]+)"
NUMBER = re.compile(
    r"\\[dt]?frac\{(?P<num>-?[0-9]+)\}\{(?P<den>-?[0-9]+)\}"
    # A minus is a sign only where it cannot be subtraction ("5-4" is 4).
    r"|(?P<sign>(?<![\w)}])[-−])?(?<![0-9])"
    rf"(?P<value>{_INTEGER}(?:\.[0-9]+)?(?:/[0-9]+)?|\.[0-9]+)"
)
"""A number as answers spell it: ``1,000``, ``-2.5``, ``3/4``, ``\\frac{1}{2}``."""
WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2}")
"""Two letters in a row that are not a LaTeX command: prose, not mathematics."""
_CHOICE = re.compile(r"(?<![A-Za-z])[A-Ea-e](?![A-Za-z])")
# A power sympy can evaluate quickly: a single symbol or a short exponent,
# never a nested one (``10^{10^{10}}`` is a number with 10^10 digits).
_SAFE_POWER = re.compile(r"\^(?:[0-9A-Za-z]|\{-?[0-9A-Za-z]{1,2}\})")
_PUNCTUATION = re.compile(r"[^\w\s]")
_UNIT_WRAPPERS = (
    "\\text{", "\\mathrm{", "\\mbox{", "^{\\circ}", "^\\circ", "\\,", "\\;", "\\ ", "}", "~"
)
_UNIT_CHARS = frozenset(" .,;:!%'")


def answers_equivalent(a: str, b: str, answer_format: AnswerFormat = "auto") -> bool:
    key_a, key_b = _key_of(a, answer_format), _key_of(b, answer_format)
    if key_a == key_b:
        return True
    if answer_format in _EXACT_FORMATS:
        return False
    if not (_safe_for_sympy(key_a) and _safe_for_sympy(key_b)):
        return False
    parsed_a, parsed_b = _parse(key_a), _parse(key_b)
    return bool(parsed_a and parsed_b) and verify(parsed_a, parsed_b, timeout_seconds=None)


@dataclass
class AnswerGroup:
    answer: str
    """The first member's answer, normalised: what the group is shown as."""
    members: list[int] = field(default_factory=list)
    """The indices of the answers in it, in the order they came."""
    weight: float = 0.0
    """The sum of its members' weights (a weighted vote's score)."""

    @property
    def count(self) -> int:
        return len(self.members)


class AnswerGroups:
    """Answers grouped as they arrive, in first-seen order. Each new answer
    is compared with one representative per group, so n answers cost
    O(n x groups) comparisons and no group is ever re-tallied."""

    def __init__(self, answer_format: AnswerFormat = "auto") -> None:
        self.answer_format = answer_format
        self.groups: list[AnswerGroup] = []

    def add(self, index: int, answer: str | None, weight: float = 1.0) -> AnswerGroup | None:
        """The group ``answer`` joins (None for no answer: it joins none)."""
        if answer is None:
            return None
        for group in self.groups:
            if answers_equivalent(group.answer, answer, self.answer_format):
                break
        else:
            group = AnswerGroup(normalise_answer(answer, self.answer_format))
            self.groups.append(group)
        group.members.append(index)
        group.weight += weight
        return group

    def largest(self) -> int:
        """How many answers the biggest group holds."""
        return max((g.count for g in self.groups), default=0)


def group_answers(answers: Sequence[str | None], answer_format: AnswerFormat = "auto"
                  ) -> AnswerGroups:
    """``answers`` grouped, each by its index."""
    groups = AnswerGroups(answer_format)
    for index, answer in enumerate(answers):
        groups.add(index, answer)
    return groups


def answer_shares(answers: Sequence[str | None], answer_format: AnswerFormat = "auto"
                  ) -> list[float]:
    """Each answer's share of all of ``answers`` (its group's size over
    their number); an answer that is None has no share."""
    shares = [0.0] * len(answers)
    for group in group_answers(answers, answer_format).groups:
        for member in group.members:
            shares[member] = group.count / len(answers)
    return shares


def normalise_answer(answer: str, answer_format: AnswerFormat) -> str:
    """An answer as it is shown: without its wrapping, in canonical form."""
    if answer_format in WHOLE_ANSWER_FORMATS:
        return answer  # canonical already
    if answer_format == "text":
        return answer.strip()
    if answer_format == "choice":
        return choice_letter(answer) or answer.strip().upper()
    return clean_math(answer)


def text_key(answer: str) -> str:
    """What two spellings of one text answer share (case, punctuation and
    spacing aside)."""
    return _key_of(answer, "text")


def choice_letter(segment: str) -> str | None:
    """The first lone letter A-E: "(B)", "C.", "**d**", "option E"."""
    match = _CHOICE.search(segment)
    return None if match is None else match.group().upper()


def json_value(text: str) -> Any:
    """Strict JSON (no ``NaN``) parsed, integral numbers as integers (JSON has
    one number type: ``1.0`` is ``1``). Raises ValueError, or RecursionError
    for absurd nesting."""
    return _integral(json.loads(text, parse_constant=_not_json))


def canonical_json(value: Any) -> str:
    """One spelling per JSON value: keys sorted, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def number_text(match: re.Match[str]) -> str:
    """A :data:`NUMBER` match as one plain spelling: no thousands
    separators, a leading zero, ``\\frac`` for a LaTeX fraction."""
    if match.group("num") is not None:
        return f"\\frac{{{match.group('num')}}}{{{match.group('den')}}}"
    value = match.group("value").replace(",", "")
    value = "0" + value if value.startswith(".") else value
    return "-" + value if match.group("sign") else value


def clean_math(answer: str) -> str:
    """A math answer without its wrapping: "$5", "x = 5", "5 apples." -> "5"."""
    answer = unwrap(unwrap(answer))
    if "=" in answer:
        answer = answer.rsplit("=", 1)[1].strip()
    number = NUMBER.match(answer)
    if number is not None and _is_units(answer[number.end() :]):
        return number_text(number)
    if WORD.search(answer) is not None and (number := NUMBER.search(answer)):
        return number_text(number)
    return answer.replace("−", "-")


def unwrap(answer: str) -> str:
    """One layer of markdown, math delimiters, trailing punctuation and
    ``\\text{}``; a fixed number of passes keeps this linear."""
    answer = answer.strip().strip("*`").strip()
    for opening, closing in (("\\(", "\\)"), ("\\[", "\\]")):
        answer = answer.removeprefix(opening).removesuffix(closing)
    answer = answer.strip().strip("$").rstrip(".,;:!").strip()
    answer = answer.removeprefix("\\$").strip()
    inner = answer[len("\\text{") : -1]
    if answer.startswith("\\text{") and answer.endswith("}") and not any(b in inner for b in "{}"):
        answer = inner
    return answer.strip()



# Shared by every request: voters compare each new answer with every group
# they hold, and this keeps that at one parse per distinct answer. Parses are
# sympy values, immutable, and lru_cache is thread-safe.
@lru_cache(maxsize=4096)
def _parse(key: str) -> list[Any]:
    return parse(f"${key}$", parsing_timeout=None)


def _key_of(answer: str, answer_format: AnswerFormat) -> str:
    """The exact-comparison form: what two spellings of one answer share."""
    normal = normalise_answer(answer, answer_format)
    if answer_format == "text":
        return " ".join(_PUNCTUATION.sub(" ", normal.casefold()).split())
    if answer_format in ("choice", *WHOLE_ANSWER_FORMATS):
        return normal
    return "".join(normal.split()).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")


def _safe_for_sympy(key: str) -> bool:
    """Short, not prose, and nothing sympy would evaluate without end: it
    computes ``99999999!`` and powers exactly."""
    return (
        len(key) <= _MAX_MATH_CHARS
        and "!" not in key
        and WORD.search(key) is None
        and key.count("^") == len(_SAFE_POWER.findall(key))
    )


def _is_units(rest: str) -> bool:
    """Whether what follows a number is a unit or punctuation ("apples.",
    "%", "\\text{ cm}", "^\\circ") rather than more of the expression."""
    for wrapper in _UNIT_WRAPPERS:
        rest = rest.replace(wrapper, " ")
    if not rest or rest.isspace():
        return True
    return rest[0] in " %" and all(c.isalpha() or c in _UNIT_CHARS for c in rest)


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _integral(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_integral(item) for item in value]
    return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")
