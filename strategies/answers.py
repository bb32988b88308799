"""Cutting the final answer out of a sample, and voting over answers.

Self-consistency and best-of-N group samples by *what they answered*, so two
samples that wrote ``1/2`` and ``0.5`` must land in one class. Extraction is
plain string work; the mathematical comparison is math-verify's.

Structured answers compare as values: a JSON answer (``json``, the default
when the request asks for JSON output) is the sample's JSON document, and
two documents are one vote when they parse to the same value, whatever the
key order, whitespace or spelling of a number (``1`` and ``1.0``). Tool calls
(``tool_calls``) compare the same way, as names with parsed arguments
(:mod:`ponder.strategies.tool_calls`).

Sample text comes from a model and, through the API, from clients, so every
scan here is linear in the input: no regex with nested quantifiers, braces
matched by one pass, and no fixpoint loops that shrink a string a few
characters at a time. math-verify runs sympy, which has no such bound
(``9^{9^{9}}`` never finishes), so only short answers of a safe shape reach
it; its own timeouts use ``signal.alarm``, which raises outside the main
thread, so they are switched off.
"""

from __future__ import annotations

import json
import re
from collections import deque
from functools import lru_cache
from typing import Any, Literal

from math_verify import parse, verify

AnswerFormat = Literal["auto", "number", "boxed", "choice", "text", "json", "tool_calls"]
WHOLE_ANSWER_FORMATS = ("json", "tool_calls")
"""Formats whose answer is the whole content of a sample, in canonical form:
the response returns the chosen sample's own text, not the canonical one."""
_EXACT_FORMATS = ("choice", "text", *WHOLE_ANSWER_FORMATS)

# Beyond these lengths a string is not an answer anyone votes on: a marker's
# answer is at the start of its line (the rest is prose), and sympy's cost
# grows with the expression.
_MAX_LINE_CHARS = 512
_MAX_MATH_CHARS = 64
# The last number ends at the last digit, so only the text just before that
# digit is read. A number longer than this is noise, not an answer: a longer
# run of bare digits yields none, and of separated digits only its tail.
_MAX_NUMBER_CHARS = 256

# Thousands groups are spelled out so that no quantifier sits inside another.
_INTEGER = r"(?:[0-9]{1,3}(?:,[0-9][0-9][0-9])+(?![0-9])|[0-9]+)"
_NUMBER = re.compile(
    r"\\[dt]?frac\{(?P<num>-?[0-9]+)\}\{(?P<den>-?[0-9]+)\}"
    # A minus is a sign only where it cannot be subtraction ("5-4" is 4).
    r"|(?P<sign>(?<![\w)}])[-−])?(?<![0-9])"
    rf"(?P<value>{_INTEGER}(?:\.[0-9]+)?(?:/[0-9]+)?|\.[0-9]+)"
)
_NUMBER_RUN_CHARS = "0123456789,./"
_MARKER = re.compile(r"\banswer\**[ \t]*:", re.IGNORECASE)
# GSM8K's "#### 12" at the start of a line, which models trained on it write
# as their last line. (Apart from _MARKER: an alternation would cost the
# regex engine its fast literal scan.)
_GSM8K_MARKER = re.compile(r"^[ \t]*####", re.MULTILINE)
_ANSWER_IS = re.compile(r"\bthe (?:final )?answer is\b[ \t]*:?", re.IGNORECASE)
_BRACES = re.compile(r"(\\boxed[ \t]*\{|[{}])")
_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2}")
_CHOICE = re.compile(r"(?<![A-Za-z])[A-Ea-e](?![A-Za-z])")
_PAREN_CHOICE = re.compile(r"\(([A-Ea-e])\)")
# A power sympy can evaluate quickly: a single symbol or a short exponent,
# never a nested one (``10^{10^{10}}`` is a number with 10^10 digits).
_SAFE_POWER = re.compile(r"\^(?:[0-9A-Za-z]|\{-?[0-9A-Za-z]{1,2}\})")
_PUNCTUATION = re.compile(r"[^\w\s]")
_UNIT_WRAPPERS = (
    "\\text{", "\\mathrm{", "\\mbox{", "^{\\circ}", "^\\circ", "\\,", "\\;", "\\ ", "}", "~"
)
_UNIT_CHARS = frozenset(" .,;:!%'")


def extract_answer(text: str, answer_format: AnswerFormat = "auto") -> str | None:
    """The final answer of one sample, normalised for display ("1,000" ->
    "1000", "\\frac{1}{2}" stays a readable string), or None when there is
    none."""
    if answer_format == "number":
        return _last_number(text)
    if answer_format == "boxed":
        boxed = _last_boxed(text)
        return None if boxed is None else _clean_math(boxed) or None
    if answer_format == "choice":
        return _extract_choice(text)
    if answer_format == "text":
        marked = _marked(text)
        return marked if marked is not None else _last_line(text)
    if answer_format == "json":
        return _json_answer(text)
    if answer_format == "tool_calls":
        raise ValueError("tool calls are read by the request's ToolCallReader, not from text")
    return _extract_auto(text)


def states_final_answer(text: str) -> bool:
    """Whether ``text`` gives its final answer the way a solution ends ("Answer:
    12", "the answer is 12", "\\boxed{12}"): a step-level search takes a
    solution as complete there."""
    return _marked(text) is not None or _last_boxed(text) is not None


def json_value(text: str) -> Any:
    """Strict JSON (no ``NaN``) parsed, integral numbers as integers (JSON has
    one number type: ``1.0`` is ``1``). Raises ValueError, or RecursionError
    for absurd nesting."""
    return _integral(json.loads(text, parse_constant=_not_json))


def canonical_json(value: Any) -> str:
    """One spelling per JSON value: keys sorted, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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


def _json_answer(text: str) -> str | None:
    """The sample's JSON document, canonical; a Markdown code fence around it
    is dropped (an unconstrained model writes one). None when it is not JSON."""
    body = text.strip()
    if body.startswith("```"):
        body = body.removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        return canonical_json(json_value(body))
    except (ValueError, RecursionError):
        return None


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


# Shared by every request: voters compare each new answer with every class
# they hold, and this keeps that at one parse per distinct answer. Parses are
# sympy values, immutable, and lru_cache is thread-safe.
@lru_cache(maxsize=4096)
def _parse(key: str) -> list[Any]:
    return parse(f"${key}$", parsing_timeout=None)


def text_key(answer: str) -> str:
    """What two spellings of one text answer share (case, punctuation and
    spacing aside)."""
    return _key_of(answer, "text")


def _key_of(answer: str, answer_format: AnswerFormat) -> str:
    """The exact-comparison form: what two spellings of one answer share."""
    normal = normalise_answer(answer, answer_format)
    if answer_format == "text":
        return " ".join(_PUNCTUATION.sub(" ", normal.casefold()).split())
    if answer_format in ("choice", *WHOLE_ANSWER_FORMATS):
        return normal
    return "".join(normal.split()).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")


def normalise_answer(answer: str, answer_format: AnswerFormat) -> str:
    if answer_format in WHOLE_ANSWER_FORMATS:
        return answer  # canonical already
    if answer_format == "text":
        return answer.strip()
    if answer_format == "choice":
        return _choice_in(answer) or answer.strip().upper()
    return _clean_math(answer)


def _safe_for_sympy(key: str) -> bool:
    """Short, not prose, and nothing sympy would evaluate without end: it
    computes ``99999999!`` and powers exactly."""
    return (
        len(key) <= _MAX_MATH_CHARS
        and "!" not in key
        and _WORD.search(key) is None
        and key.count("^") == len(_SAFE_POWER.findall(key))
    )


def _extract_auto(text: str) -> str | None:
    boxed = _last_boxed(text)
    if boxed is not None and (answer := _clean_math(boxed)):
        return answer
    marked = _marked(text)
    if marked is not None and (answer := _clean_math(marked)):
        return answer
    return _last_number(text)


def _extract_choice(text: str) -> str | None:
    """A boxed or marked letter; else a last line that is only a letter
    ("**C.**"); else the last "(B)" anywhere, which may be an item label."""
    for segment in (_last_boxed(text), _marked(text)):
        if segment is not None and (letter := _choice_in(segment)):
            return letter
    line = _last_line(text)
    if line is not None and len(_unwrap(line).strip("()")) == 1 and (letter := _choice_in(line)):
        return letter
    last = _last_match(_PAREN_CHOICE, text)
    return None if last is None else last.group(1).upper()


def _choice_in(segment: str) -> str | None:
    """The first lone letter A-E: "(B)", "C.", "**d**", "option E"."""
    match = _CHOICE.search(segment)
    return None if match is None else match.group().upper()


def _marked(text: str) -> str | None:
    """What follows the last "Answer:" marker, else the last "####" line
    start, else the last "the answer is": the rest of its line, or the next
    line when the marker ends one."""
    for pattern in (_MARKER, _GSM8K_MARKER, _ANSWER_IS):
        last = _last_match(pattern, text)
        if last is not None and (answer := _line_after(text, last.end())):
            return _first_sentence(answer) if pattern is _ANSWER_IS else answer
    return None


def _line_after(text: str, start: int) -> str | None:
    for _ in range(2):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line = text[start : min(end, start + _MAX_LINE_CHARS)].strip(" \t*")
        if line:
            return line
        start = end + 1
    return None


def _first_sentence(line: str) -> str:
    return line.split(". ", 1)[0]


def _last_line(text: str) -> str | None:
    stripped = text.rstrip()
    line = stripped[stripped.rfind("\n") + 1 :].strip()
    return line or None


def _last_boxed(text: str) -> str | None:
    """The content of the \\boxed{...} that opens last among those that close.

    One pass over the braces with a stack; an unclosed box (a sample cut off
    by max_tokens) is skipped rather than rescanned, which would be quadratic.
    The braces come from one ``split``, so the loop handles plain strings and
    the winner's position is a sum of piece lengths, both done in C.
    """
    first, end = text.find("\\boxed"), text.rfind("}") + 1  # nothing after `end` closes
    if first < 0 or end <= first:
        return None
    pieces = _BRACES.split(text[first:end])  # text, brace, text, brace, ..., text
    opened: list[int] = []  # brace number of a \boxed{, -1 for a plain brace
    best: tuple[int, int] | None = None
    for index, brace in enumerate(pieces[1::2]):
        if brace == "}":
            if opened and (box := opened.pop()) >= 0 and (best is None or box > best[0]):
                best = (box, index)
        else:
            opened.append(index if len(brace) > 1 else -1)
    if best is None:
        return None
    box, close = best
    start = first + sum(map(len, pieces[: 2 * box + 2]))
    stop = first + sum(map(len, pieces[: 2 * close + 1]))
    return text[start:stop].strip()


def _last_number(text: str) -> str | None:
    """The last number, read from the tail: it ends at the last digit, so the
    scan only needs the run of digits and separators before that digit, plus
    room for a sign or a ``\\frac{..}{`` prefix."""
    last = max(text.rfind(digit) for digit in "0123456789")
    if last < 0:
        return None
    run_start = len(text[: last + 1].rstrip(_NUMBER_RUN_CHARS))
    start = max(0, run_start - 24, last - _MAX_NUMBER_CHARS)
    number = _last_match(_NUMBER, text, start, last + 2)
    return None if number is None else _number_text(number)


def _last_match(
    pattern: re.Pattern[str], text: str, start: int = 0, end: int | None = None
) -> re.Match[str] | None:
    """Regexes only search forwards; the deque drains the matches in C."""
    matches = deque(pattern.finditer(text, start, len(text) if end is None else end), maxlen=1)
    return matches[0] if matches else None


def _number_text(match: re.Match[str]) -> str:
    if match.group("num") is not None:
        return f"\\frac{{{match.group('num')}}}{{{match.group('den')}}}"
    value = match.group("value").replace(",", "")
    value = "0" + value if value.startswith(".") else value
    return "-" + value if match.group("sign") else value


def _clean_math(answer: str) -> str:
    """A math answer without its wrapping: "$5", "x = 5", "5 apples." -> "5"."""
    answer = _unwrap(_unwrap(answer))
    if "=" in answer:
        answer = answer.rsplit("=", 1)[1].strip()
    number = _NUMBER.match(answer)
    if number is not None and _is_units(answer[number.end() :]):
        return _number_text(number)
    if _WORD.search(answer) is not None and (number := _NUMBER.search(answer)):
        return _number_text(number)
    return answer.replace("−", "-")


def _unwrap(answer: str) -> str:
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


def _is_units(rest: str) -> bool:
    """Whether what follows a number is a unit or punctuation ("apples.",
    "%", "\\text{ cm}", "^\\circ") rather than more of the expression."""
    for wrapper in _UNIT_WRAPPERS:
        rest = rest.replace(wrapper, " ")
    if not rest or rest.isspace():
        return True
    return rest[0] in " %" and all(c.isalpha() or c in _UNIT_CHARS for c in rest)
