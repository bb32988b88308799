"""Cutting the final answer out of a sample.

Extraction is plain string work: the last boxed expression, the line after
an "Answer:" marker, the last number, a JSON document. When two extracted
answers are the same answer is :mod:`ponder.core.answers`' one rule, which
every vote, verifier and calibration groups by.

Sample text comes from a model and, through the API, from clients, so every
scan here is linear in the input: no regex with nested quantifiers, braces
matched by one pass, and no fixpoint loops that shrink a string a few
characters at a time.
"""

from __future__ import annotations

import re
from collections import deque

from ponder.core.answers import (
    NUMBER,
    AnswerFormat,
    canonical_json,
    choice_letter,
    clean_math,
    json_value,
    number_text,
    unwrap,
)

# Beyond this length a string is not an answer anyone votes on: a marker's
# answer is at the start of its line (the rest is prose).
_MAX_LINE_CHARS = 512
# The last number ends at the last digit, so only the text just before that
# digit is read. A number longer than this is noise, not an answer: a longer
# run of bare digits yields none, and of separated digits only its tail.
_MAX_NUMBER_CHARS = 256
_NUMBER_RUN_CHARS = "0123456789,./"
_MARKER = re.compile(r"\banswer\**[ \t]*:", re.IGNORECASE)
# GSM8K's "#### 12" at the start of a line, which models trained on it write
# as their last line. (Apart from _MARKER: an alternation would cost the
# regex engine its fast literal scan.)
_GSM8K_MARKER = re.compile(r"^[ \t]*####", re.MULTILINE)
_ANSWER_IS = re.compile(r"\bthe (?:final )?answer is\b[ \t]*:?", re.IGNORECASE)
_BRACES = re.compile(r"(\\boxed[ \t]*\{|[{}])")
_PAREN_CHOICE = re.compile(r"\(([A-Ea-e])\)")


def extract_answer(text: str, answer_format: AnswerFormat = "auto") -> str | None:
    """The final answer of one sample, normalised for display ("1,000" ->
    "1000", "\\frac{1}{2}" stays a readable string), or None when there is
    none."""
    if answer_format == "number":
        return _last_number(text)
    if answer_format == "boxed":
        boxed = _last_boxed(text)
        return None if boxed is None else clean_math(boxed) or None
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


def _extract_auto(text: str) -> str | None:
    boxed = _last_boxed(text)
    if boxed is not None and (answer := clean_math(boxed)):
        return answer
    marked = _marked(text)
    if marked is not None and (answer := clean_math(marked)):
        return answer
    return _last_number(text)


def _extract_choice(text: str) -> str | None:
    """A boxed or marked letter; else a last line that is only a letter
    ("**C.**"); else the last "(B)" anywhere, which may be an item label."""
    for segment in (_last_boxed(text), _marked(text)):
        if segment is not None and (letter := choice_letter(segment)):
            return letter
    line = _last_line(text)
    if line is not None and len(unwrap(line).strip("()")) == 1 and (letter := choice_letter(line)):
        return letter
    last = _last_match(_PAREN_CHOICE, text)
    return None if last is None else last.group(1).upper()


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
    number = _last_match(NUMBER, text, start, last + 2)
    return None if number is None else number_text(number)


def _last_match(
    pattern: re.Pattern[str], text: str, start: int = 0, end: int | None = None
) -> re.Match[str] | None:
    """Regexes only search forwards; the deque drains the matches in C."""
    matches = deque(pattern.finditer(text, start, len(text) if end is None else end), maxlen=1)
    return matches[0] if matches else None
