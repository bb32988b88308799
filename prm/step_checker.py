"""``step-checker``: a rule-based process verifier that needs no model.

It checks what a careful human grader checks, and names the level each
step reaches (``StepScores.labels``, shown by ``include_candidates``):

* **wrong claim** (0.0): a claim the step makes is false. Claims are the
  arithmetic written out (``3 * 4 = 12``, chains such as ``2+3=5=10/2``,
  GSM8K's ``<<48/2=24>>`` annotations) and the arithmetic said in words
  ("9 times 9 is 81", "add 9 and 8, which gives 17", "24 stickers / 4
  friends = 6"), checked exactly by the safe evaluator in
  :mod:`ponder.prm.arithmetic`.
* **unsupported answer** (0.25): the solution's final answer equals the
  result of no checked computation in it: an answer stated with no work, or
  one that contradicts the work (``2 + 2 = 4. The answer is 9.``).
* **ungrounded** (0.25): every claim holds, but a computation is built from
  numbers that appear nowhere: neither in the question (in digits or in
  words: "three", "a dozen", "half"; with the conversions its units imply,
  :mod:`ponder.prm.quantities`) nor among the grounded results computed
  before it. ``2 + 2 = 4`` is true and says nothing about ``6 - 18``. A
  final answer that only such work supports is ungrounded too.
* **partial answer** (0.5): the answer is a grounded result, but of work
  that leaves out a number the problem gives (``2 x 7 = 14`` for "2 packs
  of 7, and he had 8").
* **no claim** (1.0): nothing checkable. A step of plain reasoning neither
  helps nor hurts: under ``min`` or ``prod`` it costs its solution nothing.
* **grounded** (1.0): every computation holds and starts from the problem.
* **answer supported** (1.0): the last step of a finished solution, whose
  final answer equals a grounded result that uses every number the problem
  gives.

An identity (``9 * 1 = 9``, ``9 - 9 = 0``) computes nothing new: it supports
no answer. A step's level depends on the question and the steps up to it,
never on later ones, so a search can score step by step. The answer is
judged only on a finished solution (``Solution.answer``); a partial one is
judged on its claims alone.

A side that continues in words (``2/3 of 9 = 6``, ``20% of 50 = 10``) is
incomplete and is left out rather than read as the false ``9 = 6``.
Everything is linear in the text: claims and remembered values are capped,
and numbers match by set lookups.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ponder.core.scoring import Solution, StepScores
from ponder.prm.arithmetic import Rejected, evaluate, normalise
from ponder.prm.quantities import MAX_VALUES, NUMBER, stated_numbers

RELATIVE_TOLERANCE = Fraction(1, 10**6)
MAX_CLAIMS = 64
"""Claims checked per step: a step is prose, and a flood of claims is not."""
MAX_SOLUTION_CLAIMS = 256
"""Claims checked per solution; steps past them are not read (no claim),
so a solution of a hundred thousand steps costs no more than a long one."""
MAX_RUN_CHARS = 2000
"""Longer runs of arithmetic are not something a step claims but an attack
on the checker; they are skipped unread."""
MAX_REMEMBERED = 2 * MAX_VALUES
"""Values a solution's grading remembers: the question's, then its results."""
MAX_SHOWN_DECIMALS = 10
"""A number shown with more decimals is matched at this precision."""

_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_LIST_MARKER = re.compile(r"(?m)^\s*\d+[.)]\s+")
# Digits, operators, parentheses, "=" and spaces within a line; a "." only
# before a digit, so the full stop of "is 5. Then 3 + 4 = 7" ends the run.
_RUN = re.compile(r"(?:\.(?=\d))?[-+*/^()= \t\d]+(?:\.\d[-+*/^()= \t\d]*)*")
_WORDS = (
    r"of|times|by|per|plus|minus|over|divided|multiplied|percent|squared|cubed|than"
    r"|(?:more|less|fewer|greater|smaller|larger|bigger|higher|lower)\s+than"
)
_WINDOW = 16
_OPERATOR_BEFORE = re.compile(rf"(?:%|\b(?:{_WORDS}))\s*$", re.IGNORECASE)
_OPERATOR_AFTER = re.compile(rf"\s*(?:%|(?:{_WORDS})\b)", re.IGNORECASE)
_DECIMAL = re.compile(r"-?\d*\.(\d+)")
_OPERATOR = re.compile(r"[-+*/^]")
# Arithmetic said in words, rewritten into symbols before claims are read:
# "multiply 9 by 9, which gives us 81" is the claim 9 * 9 = 81.
_LINK = r"(?:to|and|by|from|which|is|are|gives|get|equals|makes|yields|results|we|you|so)\b"
_NUM = rf"(\d+(?:\.\d+)?)(?:[ \t]+(?!{_LINK})[A-Za-z]{{1,20}})?"  # a number, maybe its unit
_SAID_OPERATIONS = tuple(
    (keyword, re.compile(pattern, re.IGNORECASE), replacement)
    for keyword, pattern, replacement in (
        ("multiply", rf"\b(?:multiply|multiplying)[ \t]+{_NUM}[ \t]+by[ \t]+{_NUM}", r"\1 * \2"),
        ("divid", rf"\b(?:divide|dividing)[ \t]+{_NUM}[ \t]+by[ \t]+{_NUM}", r"\1 / \2"),
        ("add", rf"\b(?:add|adding)[ \t]+{_NUM}[ \t]+(?:and|to)[ \t]+{_NUM}", r"\1 + \2"),
        ("subtract", rf"\b(?:subtract|subtracting)[ \t]+{_NUM}[ \t]+from[ \t]+{_NUM}",
         r"\2 - \1"),
        ("sum", rf"\bthe sum of[ \t]+{_NUM}[ \t]+and[ \t]+{_NUM}", r"\1 + \2"),
        ("product", rf"\bthe product of[ \t]+{_NUM}[ \t]+and[ \t]+{_NUM}", r"\1 * \2"),
        ("times", r"(?<=\d)[ \t]+times[ \t]+(?=\d)", " * "),
        ("multiplied", r"(?<=\d)[ \t]+multiplied[ \t]+by[ \t]+(?=\d)", " * "),
        ("divided", r"(?<=\d)[ \t]+divided[ \t]+by[ \t]+(?=\d)", " / "),
        ("plus", r"(?<=\d)[ \t]+plus[ \t]+(?=\d)", " + "),
        ("minus", r"(?<=\d)[ \t]+minus[ \t]+(?=\d)", " - "),
    )
)
_SAID_EQUALS = re.compile(
    r"(?<=[\d)])[ \t]*(?:,[ \t]*)?(?:which[ \t]+)?(?:is[ \t]+equal[ \t]+to|equals|is|gives"
    r"(?:[ \t]+(?:us|you))?|results[ \t]+in|yields|makes|we[ \t]+get|you[ \t]+get|to[ \t]+get)"
    r"[ \t]+(?=[-(\d])",
    re.IGNORECASE,
)
# A unit between a number and an operator: "24 stickers / 4 friends = 6";
# a label in parentheses: "11 (apples) + 5 (new ones) = 16".
_UNIT = re.compile(r"(?<=\d)[ \t]+[A-Za-z]{1,20}(?=[ \t]*(?:[-+*/=]|x[ \t]*\d))")
_LABEL = re.compile(r"(?<=\d)[ \t]*\((?=[^()]*[A-Za-z])[^()\n]{1,60}\)")
_EQUALS_WORDS = ("is", "equal", "give", "result", "yield", "make", "get")
_RUN_CHARS = frozenset("0123456789.+-*/^()= \t")
_LATEX_FRACTION = re.compile(r"^(-?)\\[dt]?frac\{(-?\d+)\}\{(-?\d+)\}$")


@dataclass(frozen=True)
class Level:
    """How far a step gets with a careful grader."""

    name: str
    score: float


WRONG = Level("wrong claim", 0.0)
UNGROUNDED = Level("ungrounded", 0.25)
UNSUPPORTED = Level("unsupported answer", 0.25)
PARTIAL = Level("partial answer", 0.5)
NO_CLAIM = Level("no claim", 1.0)
GROUNDED = Level("grounded", 1.0)
SUPPORTED = Level("answer supported", 1.0)
LEVELS = (WRONG, UNSUPPORTED, UNGROUNDED, PARTIAL, NO_CLAIM, SUPPORTED, GROUNDED)
"""Worst first: a step with several findings is named by the worst of them
(and a last step whose claims are grounded by its answer's support)."""


@dataclass(frozen=True)
class Claim:
    """Expressions said to be equal, in order: ``2+3=5=10/2`` has three."""

    sides: tuple[str, ...]

    def verdict(self) -> Verdict | None:
        """None when a side cannot be evaluated (too big, or not arithmetic
        after all)."""
        try:
            values = [evaluate(side) for side in self.sides]
        except ZeroDivisionError:
            return Verdict(holds=False, value=None, new=False)
        except Rejected:
            return None
        pairs = zip(zip(self.sides, values), zip(self.sides[1:], values[1:]))
        holds = all(_agree(left, right) for left, right in pairs)
        computed = [(side, v) for side, v in zip(self.sides, values) if is_computation(side)]
        if not computed:
            return Verdict(holds, value=None, new=False)
        return Verdict(holds, value=computed[0][1], new=not _identity(*computed[0]))


@dataclass(frozen=True)
class Verdict:
    holds: bool
    value: Fraction | None
    """What the claim computes (its first computation's value, exact);
    None for a restatement such as ``12 = 12``."""
    new: bool
    """False for an identity (``9 * 1 = 9``, ``9 - 9 = 0``): it computes no
    new quantity."""


class StepChecker:
    reads_logprobs: int | None = None

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        """Reads no tokens: ``tokens`` is 0. Earlier steps are re-read for
        what they computed, but their known scores are kept as they are.
        The parsing is CPU work, done off the event loop."""
        return await asyncio.to_thread(self._score, question, solutions)

    def _score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        graded = [grade(question, s.steps, s.answer) for s in solutions]
        return StepScores(
            [[*s.known, *(level.score for level in levels[len(s.known):])]
             for s, levels in zip(solutions, graded)],
            tokens=0,
            labels=[[level.name for level in levels] for levels in graded],
        )


def grade(question: str, steps: Sequence[str], answer: str | None = None) -> list[Level]:
    """Each step's level; the last step's includes the answer's support."""
    work = Work(question)
    levels = []
    for index, step in enumerate(steps):
        findings = [work.check(step)]
        if answer is not None and index == len(steps) - 1:
            findings.append(work.support(answer))
        found = [level for level in findings if level is not None]
        levels.append(min(found, key=LEVELS.index) if found else NO_CLAIM)
    return levels


Provenance = frozenset[Fraction]
"""The problem's given numbers a value was computed from."""


class Work:
    """What a solution has established so far: the numbers it may start
    from (the question's, then its own grounded results), each with the
    given numbers it stands for, and the results it computed."""

    def __init__(self, question: str) -> None:
        stated = stated_numbers(question)
        self.given = stated.given
        self.known = Values()
        for value in stated.given:
            self.known.add(value, frozenset({value}))
        for value in stated.implied:
            self.known.add(value, frozenset())
        self.results = Values()
        """Grounded results, with what they were computed from."""
        self.ungrounded = Values()
        self.claims_left = MAX_SOLUTION_CLAIMS

    def check(self, step: str) -> Level | None:
        """The step's level by its claims; None when it makes none that
        computes anything."""
        if self.claims_left <= 0:
            return None
        claims = find_claims(step)[: self.claims_left]
        self.claims_left -= len(claims)
        found: Level | None = None
        for claim in claims:
            verdict = claim.verdict()
            if verdict is None:
                continue
            if not verdict.holds:
                return WRONG
            if verdict.value is None:
                continue
            sources = [self._provenance(side) for side in claim.sides]
            grounded = [p for p in sources if p is not None]
            if not verdict.new:
                if grounded:  # "1 * 6 = 6": the 6 now also stands for the 1
                    self.known.add(verdict.value, frozenset().union(*grounded))
                continue
            if not grounded:
                self.ungrounded.add(verdict.value, frozenset())
                found = UNGROUNDED
                continue
            provenance = frozenset().union(*grounded)
            self.results.add(verdict.value, provenance)
            self.known.add(abs(verdict.value), provenance)
            found = found or GROUNDED
        return found

    def support(self, answer: str) -> Level | None:
        """Whether the final answer is what the work computed, from every
        number the problem gives; None for an answer that is not a number
        (nothing to compare)."""
        value = answer_value(answer)
        if value is None:
            return None
        shown = _shown_decimals(answer)
        provenance = self.results.provenance(value, shown)
        if provenance is not None:
            return SUPPORTED if self.given <= provenance else PARTIAL
        if self.ungrounded.provenance(value, shown) is not None:
            return UNGROUNDED
        return UNSUPPORTED

    def _provenance(self, side: str) -> Provenance | None:
        """What the numbers of ``side`` stand for, when all are known."""
        found: set[Fraction] = set()
        for match in NUMBER.finditer(normalise(side)):
            provenance = self.known.provenance(Fraction(match.group()),
                                               _shown_decimals(match.group()))
            if provenance is None:
                return None
            found |= provenance
        return frozenset(found)


class Values:
    """Exact values, each with its provenance, that also finds a value by a
    rounded form of it ("2.33" is 7/3 shown with two decimals), in constant
    time. A value added again keeps the union of its provenances."""

    def __init__(self) -> None:
        self._exact: dict[Fraction, Provenance] = {}
        self._rounded: dict[int, dict[Fraction, Provenance]] = {}
        """Built for a precision when a number shown with it is first looked up."""

    def add(self, value: Fraction, provenance: Provenance) -> None:
        if value not in self._exact and len(self._exact) >= MAX_REMEMBERED:
            return
        self._exact[value] = self._exact.get(value, frozenset()) | provenance
        for decimals, rounded in self._rounded.items():
            key = round(value, decimals)
            rounded[key] = rounded.get(key, frozenset()) | provenance

    def provenance(self, value: Fraction, shown_decimals: int = 0) -> Provenance | None:
        """Where ``value`` comes from; None when it is not here."""
        if value in self._exact:
            return self._exact[value]
        if shown_decimals == 0:
            return None
        decimals = min(shown_decimals, MAX_SHOWN_DECIMALS)
        if decimals not in self._rounded:
            rounded: dict[Fraction, Provenance] = {}
            for known, provenance in self._exact.items():
                key = round(known, decimals)
                rounded[key] = rounded.get(key, frozenset()) | provenance
            self._rounded[decimals] = rounded
        return self._rounded[decimals].get(round(value, decimals))


def is_computation(side: str) -> bool:
    """A side with an operator after its sign: ``6 - 18``, not ``-12``."""
    return _OPERATOR.search(normalise(side).strip().lstrip("(-+ ")) is not None


def _identity(side: str, value: Fraction) -> bool:
    """Multiplying or dividing by 1, adding or taking away 0, or a number
    against itself: the result is no new quantity."""
    numbers = [Fraction(match.group()) for match in NUMBER.finditer(normalise(side))]
    if len(set(numbers)) == 1 and value in (0, 1):
        return True
    if value not in numbers:
        return False
    others = list(numbers)
    others.remove(value)
    return all(number in (0, 1) for number in others)


def answer_value(answer: str) -> Fraction | None:
    """The number an extracted answer states (``-12``, ``1/2``, ``2.5``,
    ``\\frac{1}{2}``), or None."""
    text = answer.strip()
    fraction = _LATEX_FRACTION.match(text)
    if fraction is not None:
        text = f"{fraction.group(1)}({fraction.group(2)})/({fraction.group(3)})"
    try:
        return evaluate(text)
    except (Rejected, ZeroDivisionError):
        return None


def _shown_decimals(text: str) -> int:
    """How many decimals a number is shown with ("2.33": 2; "7": 0)."""
    shown = _DECIMAL.fullmatch(normalise(text).replace(" ", ""))
    return len(shown.group(1)) if shown else 0


def find_claims(step: str) -> list[Claim]:
    """The calculator annotations first, then the equalities in the prose
    (with the annotations cut out, so ``= <<48/2=24>>24`` reads ``= 24``)."""
    chains = [_sides(annotation.split("=")) for annotation in _ANNOTATION.findall(step)]
    prose = normalise(_LIST_MARKER.sub(" ", _ANNOTATION.sub(" ", step)))
    said = _symbols(prose)
    if said != prose:  # normalised again once the words are gone: "3 apples x 4" is "3 x 4"
        prose = normalise(said)
    for run in _RUN.finditer(prose):
        if len(chains) >= MAX_CLAIMS:
            break
        if "=" in run.group() and len(run.group()) <= MAX_RUN_CHARS:
            chains.append(_prose_sides(prose, run))
    return [Claim(tuple(sides)) for sides in chains if len(sides) >= 2]


def _symbols(prose: str) -> str:
    """Arithmetic said in words, in symbols: "9 times 9 is 81", "add 9 and
    8, which results in 17", "24 stickers / 4 friends = 6" and "11 (apples)
    + 5 = 16" read as the claims they make. "Is" and its kin become "=" only after a computation
    ("step 1 is 5" claims nothing)."""
    prose = _UNIT.sub("", _LABEL.sub("", prose))
    lowered = prose.lower()
    for keyword, pattern, replacement in _SAID_OPERATIONS:
        if keyword in lowered:  # most steps say none of them: skip the pass
            prose = pattern.sub(replacement, prose)
    if not any(word in lowered for word in _EQUALS_WORDS):
        return prose
    return _SAID_EQUALS.sub(lambda said: " = " if _follows_computation(prose, said.start())
                            else said.group(), prose)


def _follows_computation(prose: str, end: int) -> bool:
    """Whether the arithmetic just before ``end`` computes something (a
    window, so the scan stays linear)."""
    start = end
    while start > max(0, end - _WINDOW * 4) and prose[start - 1] in _RUN_CHARS:
        start -= 1
    return any(map(is_computation, prose[start:end].split("=")))


def _prose_sides(prose: str, run: re.Match[str]) -> list[str]:
    sides = run.group().split("=")
    # The words are short: a window before the run is enough, and keeps the
    # scan linear in the length of the step.
    if _OPERATOR_BEFORE.search(prose, max(0, run.start() - _WINDOW), run.start()):
        sides = sides[1:]
    if _OPERATOR_AFTER.match(prose, run.end()):
        sides = sides[:-1]
    elif sides:  # "= 6/pair": the run went on into a word, after the number
        sides[-1] = sides[-1].rstrip().rstrip("+-*/^").rstrip()
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
    return any(
        (decimals := _shown_decimals(text)) and difference <= Fraction(1, 2 * 10**decimals)
        for text, _ in (left, right)
    )
