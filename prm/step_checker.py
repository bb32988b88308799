"""``step-checker``: a rule-based process verifier that needs no model.

It finds the arithmetic each step claims (``3 * 4 = 12``, chains such as
``2+3=5=10/2``, GSM8K's ``<<48/2=24>>`` calculator annotations) and checks
each claim with the safe evaluator in :mod:`ponder.prm.arithmetic`. A step
scores 1 when every claim it makes holds, 0 when one fails, and a neutral
0.5 when it makes none that can be checked, so a step of plain reasoning
neither helps nor hurts its solution. On a CPU with a 135M model, whose
steps are mostly wrong arithmetic, this is the verifier that pays.

Only claims written in symbols are checked. A side that continues in words
(``2/3 of 9 = 6``, ``20% of 50 = 10``) is incomplete and is left out rather
than read as the false ``9 = 6``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ponder.core.scoring import Solution, StepScores
from ponder.prm.arithmetic import Rejected, evaluate, normalise

NEUTRAL = 0.5
RELATIVE_TOLERANCE = Fraction(1, 10**6)
MAX_CLAIMS = 64
"""Claims checked per step: a step is prose, and a flood of claims is not."""
MAX_RUN_CHARS = 2000
"""Longer runs of arithmetic are not something a step claims but an attack
on the checker; they are skipped unread."""

_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_LIST_MARKER = re.compile(r"(?m)^\s*\d+[.)]\s+")
# Digits, operators, parentheses, "=" and spaces within a line; a "." only
# before a digit, so the full stop of "is 5. Then 3 + 4 = 7" ends the run.
_RUN = re.compile(r"(?:\.(?=\d))?[-+*/^()= \t\d]+(?:\.\d[-+*/^()= \t\d]*)*")
_WORDS = r"of|times|by|per|plus|minus|over|divided|multiplied|percent|squared|cubed"
_WINDOW = 16
_OPERATOR_BEFORE = re.compile(rf"(?:%|\b(?:{_WORDS}))\s*$", re.IGNORECASE)
_OPERATOR_AFTER = re.compile(rf"\s*(?:%|(?:{_WORDS})\b)", re.IGNORECASE)
_DECIMAL = re.compile(r"-?\d*\.(\d+)")


@dataclass(frozen=True)
class Claim:
    """Expressions said to be equal, in order: ``2+3=5=10/2`` has three."""

    sides: tuple[str, ...]

    def holds(self) -> bool | None:
        """Whether each side equals the next; None when a side cannot be
        evaluated (too big, or not arithmetic after all)."""
        try:
            values = [evaluate(side) for side in self.sides]
        except ZeroDivisionError:
            return False
        except Rejected:
            return None
        pairs = zip(zip(self.sides, values), zip(self.sides[1:], values[1:]))
        return all(_agree(left, right) for left, right in pairs)


class StepChecker:
    reads_logprobs: int | None = None

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        """Reads no tokens: ``tokens`` is 0."""
        return StepScores(
            [[*s.known, *map(check_step, s.new_steps)] for s in solutions], tokens=0
        )


def check_step(step: str) -> float:
    verdicts = [v for claim in find_claims(step) if (v := claim.holds()) is not None]
    if not verdicts:
        return NEUTRAL
    return 1.0 if all(verdicts) else 0.0


def find_claims(step: str) -> list[Claim]:
    """The calculator annotations first, then the equalities in the prose
    (with the annotations cut out, so ``= <<48/2=24>>24`` reads ``= 24``)."""
    chains = [_sides(annotation.split("=")) for annotation in _ANNOTATION.findall(step)]
    prose = normalise(_LIST_MARKER.sub(" ", _ANNOTATION.sub(" ", step)))
    for run in _RUN.finditer(prose):
        if len(chains) >= MAX_CLAIMS:
            break
        if "=" in run.group() and len(run.group()) <= MAX_RUN_CHARS:
            chains.append(_prose_sides(prose, run))
    return [Claim(tuple(sides)) for sides in chains if len(sides) >= 2]


def _prose_sides(prose: str, run: re.Match[str]) -> list[str]:
    sides = run.group().split("=")
    # The words are short: a window before the run is enough, and keeps the
    # scan linear in the length of the step.
    if _OPERATOR_BEFORE.search(prose, max(0, run.start() - _WINDOW), run.start()):
        sides = sides[1:]
    if _OPERATOR_AFTER.match(prose, run.end()):
        sides = sides[:-1]
    return _sides(sides)


def _sides(raw: list[str]) -> list[str]:
    return [side for side in map(_trim_parentheses, raw) if side]


def _trim_parentheses(side: str) -> str:
    """Drop the unmatched parentheses a run picks up from the prose around
    it, as in "(so 3 + 4 = 7)"."""
    side = side.strip()
    while side.startswith("(") and side.count("(") > side.count(")"):
        side = side[1:].strip()
    while side.endswith(")") and side.count(")") > side.count("("):
        side = side[:-1].strip()
    return side


def _agree(left: tuple[str, Fraction], right: tuple[str, Fraction]) -> bool:
    """Equal, equal up to a relative 1e-6, or equal at the precision a
    decimal side is shown with: "7/3 = 2.33" holds, "7/3 = 2.3" holds,
    "7/3 = 2.4" does not; an integer side is never read as rounded."""
    difference = abs(left[1] - right[1])
    scale = max(abs(left[1]), abs(right[1]))
    if difference <= RELATIVE_TOLERANCE * scale:
        return True
    return any(difference <= _half_unit(text) for text, _ in (left, right))


def _half_unit(text: str) -> Fraction:
    shown = _DECIMAL.fullmatch(normalise(text).replace(" ", ""))
    return Fraction(1, 2 * 10 ** len(shown.group(1))) if shown else Fraction(0)
