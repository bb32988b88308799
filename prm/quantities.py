"""The numbers a text states, as a careful grader reads them: in digits
(``1,200``, ``2.5``, ``$3``) and in words (``three``, ``twenty-five``,
``a dozen``, ``half``), plus the unit conversions its units imply (an hour
has 60 minutes). The step checker grounds a solution's computations in
them: an operand must be something the problem said, or a result the
solution computed from it.

Every scan is one regex pass, linear in the text, and the number of values
read is capped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

from ponder.prm.arithmetic import normalise

MAX_VALUES = 256
"""Values read from one text: a problem states a handful."""

NUMBER = re.compile(r"\d+(?:\.\d+)?|\.\d+")
"""A number in digits, unsigned (a minus sign is an operator to the checker),
in text already through :func:`~ponder.prm.arithmetic.normalise`."""
_WORD = re.compile(r"[a-z]+|%")

_UNITS = {
    word: value for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {
    word: 10 * value for value, word in enumerate(
        "twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2
    )
}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "dozen": 12}
# Words that stand for a number without being one: what a computation with
# them multiplies or divides by.
_IMPLIED_BY = (
    ("half halves", ("2", "1/2")),
    ("quarter quarters", ("4", "1/4")),
    ("third thirds", ("3", "1/3")),
    ("twice double doubles pair pairs", ("2",)),
    ("triple thrice", ("3",)),
    ("percent % cents", ("100",)),
    ("minute minutes", ("60",)),
    ("hour hours", ("60", "24")),
    ("day days", ("24", "7")),
    ("week weeks", ("7", "52")),
    ("month months", ("12",)),
    ("year years", ("12", "52", "365")),
    ("foot feet", ("12", "3")),
    ("inch inches", ("12",)),
    ("yard yards", ("3",)),
    ("meter meters metre metres", ("100", "1000")),
    ("kilometer kilometers gram grams kilogram kilograms liter liters", ("1000",)),
    ("pound pounds ounce ounces", ("16",)),
)
_IMPLIED = {
    word: tuple(map(Fraction, values)) for words, values in _IMPLIED_BY for word in words.split()
}


@dataclass(frozen=True)
class Stated:
    """The numbers of a problem."""

    given: frozenset[Fraction]
    """Written in digits or spelled out: the quantities a full solution
    uses. A lone "one" is not among them; it is as often a pronoun."""
    implied: frozenset[Fraction]
    """What words imply (half: 2; hours: 60; the dozen of "two dozen"):
    numbers a solution may use without the problem writing them."""


def stated_numbers(text: str) -> Stated:
    """Every value ``text`` states or implies, up to :data:`MAX_VALUES`."""
    given: set[Fraction] = set()
    implied: set[Fraction] = set()
    for value, is_given in _all(text):
        (given if is_given else implied).add(value)
        if len(given) + len(implied) >= MAX_VALUES:
            break
    return Stated(frozenset(given), frozenset(implied - given))


def _all(text: str) -> Iterator[tuple[Fraction, bool]]:
    for match in NUMBER.finditer(normalise(text)):
        yield Fraction(match.group()), True
    yield from _word_numbers(text.lower())


def _word_numbers(text: str) -> Iterator[tuple[Fraction, bool]]:
    """Spelled-out numbers ("twenty-five", "one hundred and five", "two
    dozen"), given, and the parts they are made of and the values words
    imply, implied."""
    total = current = 0
    reading = after_scale = False
    for word in _WORD.findall(text):
        if word == "and" and after_scale:  # "one hundred and five"
            continue
        after_scale = word in _SCALES
        if word in _UNITS or word in _TENS:
            current += _UNITS.get(word, 0) + _TENS.get(word, 0)
            reading = True
        elif after_scale:  # the scale and what it multiplies: "two dozen" is 2 x 12
            yield Fraction(_SCALES[word]), False
            if current:
                yield Fraction(current), False
            if word == "hundred":
                current = max(current, 1) * 100
            else:
                total, current = total + max(current, 1) * _SCALES[word], 0
            reading = True
        else:
            if reading:
                yield Fraction(total + current), total + current != 1
            total = current = 0
            reading = False
            yield from ((value, False) for value in _IMPLIED.get(word, ()))
    if reading:
        yield Fraction(total + current), total + current != 1
