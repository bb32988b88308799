"""A safe evaluator for the arithmetic that solution steps claim.

Model output is untrusted text, so nothing here calls ``eval``: the
expression is parsed with :mod:`ast` and walked over numbers, unary minus
and ``+ - * / **`` only. Every way to make that walk expensive is bounded
before any work is done: the text length (which also bounds the nesting
depth, so no ``RecursionError``), the size of every intermediate value, and
the exponent of a power (``9**9**9`` and ``2^999999`` are rejected, not
computed). Values are exact fractions, so ``0.1 + 0.2 = 0.3`` holds.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction

MAX_CHARS = 200
"""Longest expression evaluated; 100 nesting levels at most, far below the
parser's and the interpreter's recursion limits."""
MAX_BITS = 2048
"""Largest numerator or denominator of any value (about 600 digits)."""
MAX_EXPONENT = 64

_SYMBOLS = str.maketrans({"×": "*", "·": "*", "⋅": "*", "÷": "/", "−": "-", "–": "-"})
_CURRENCY = re.compile(r"[$€£]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# "3 x 4" and "3x4" are products; "x = 4" and "2x + 1" are algebra, left alone.
_TIMES_X = re.compile(r"(?<=[\d)])[ \t]*x[ \t]*(?=[\d(])")
_ALLOWED = re.compile(r"[\d.+\-*/^()\s]+")


class Rejected(ValueError):
    """Not an expression this evaluator will compute: malformed, or too big."""


def normalise(text: str) -> str:
    """Prose notation to the evaluator's: ``×``/``x``/``·`` to ``*``, ``÷``
    to ``/``, typographic minus signs to ``-``, and no currency signs or
    thousands separators (``$1,200`` is ``1200``)."""
    text = _THOUSANDS.sub("", _CURRENCY.sub("", text.translate(_SYMBOLS)))
    return _TIMES_X.sub("*", text)


def evaluate(expression: str) -> Fraction:
    """The exact value of ``expression``; raises :class:`Rejected` for
    anything but bounded arithmetic, and ``ZeroDivisionError`` for a
    division by zero (a wrong claim, not an unreadable one)."""
    if len(expression) > MAX_CHARS:
        raise Rejected(f"longer than {MAX_CHARS} characters")
    text = normalise(expression).strip()
    if not _ALLOWED.fullmatch(text):
        raise Rejected(f"not plain arithmetic: {text!r}")
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise Rejected(f"malformed: {text!r}") from error
    return _value(tree.body)


def _value(node: ast.expr) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        # repr gives back the literal as written (up to 17 digits), so
        # 2.33 becomes exactly 233/100, not the nearest binary float.
        return _bounded(Fraction(repr(node.value)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _value(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Add):
            return _bounded(left + right)
        if isinstance(node.op, ast.Sub):
            return _bounded(left - right)
        if isinstance(node.op, ast.Mult):
            return _bounded(left * right)
        if isinstance(node.op, ast.Div):
            return _bounded(left / right)
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
    raise Rejected(f"unsupported syntax: {type(node).__name__}")


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    """Checked before computing: the result's size is about the base's bits
    times the exponent."""
    if exponent.denominator != 1 or abs(exponent) > MAX_EXPONENT:
        raise Rejected(f"exponent {exponent} is not an integer of at most {MAX_EXPONENT}")
    bits = max(base.numerator.bit_length(), base.denominator.bit_length())
    if bits * abs(exponent) > MAX_BITS:
        raise Rejected("power too large")
    return base ** int(exponent)


def _bounded(value: Fraction) -> Fraction:
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_BITS:
        raise Rejected("value too large")
    return value
