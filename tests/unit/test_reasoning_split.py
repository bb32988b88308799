"""The reasoning/answer split must be the same whether a sample arrives whole
or in pieces of any size."""

from __future__ import annotations

import pytest

from ponder.strategies.reasoning import MarkerSplitter, NoReasoning

SPLITTER = MarkerSplitter("Answer:")


def _streamed(text: str, size: int) -> tuple[str, str]:
    streamer = SPLITTER.streamer()
    reasoning, content = "", ""
    for start in range(0, len(text), size):
        part = streamer.feed(text[start : start + size])
        reasoning, content = reasoning + part.reasoning, content + part.content
    last = streamer.finish()
    return reasoning + last.reasoning, content + last.content


@pytest.mark.parametrize(
    ("text", "reasoning", "content"),
    [
        ("6 - 18 is negative.\nAnswer: -12", "6 - 18 is negative.\n", "-12"),
        ("Steps.\n**Answer:** 42", "Steps.\n**", "42"),
        ("Answer: 7", "", "7"),
        ("no marker here\nso 5", "no marker here\nso 5", "so 5"),
        ("", "", ""),
    ],
)
@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_stream_and_whole_agree(text: str, reasoning: str, content: str, size: int) -> None:
    whole = SPLITTER.split(text)
    assert (whole.reasoning, whole.content) == (reasoning, content)
    assert _streamed(text, size) == (reasoning, content)


def test_reasoning_end_points_at_the_marker() -> None:
    text = "think think\nAnswer: 3"
    assert SPLITTER.split(text).reasoning_end == text.index("Answer:")
    assert SPLITTER.split("no marker").reasoning_end == len("no marker")


def test_a_marker_prefix_that_is_not_the_marker_is_released() -> None:
    streamer = SPLITTER.streamer()
    assert streamer.feed("An").reasoning == ""  # could be the marker's start
    assert streamer.feed("d so").reasoning == "And so"


def test_no_reasoning_passes_everything_as_content() -> None:
    split = NoReasoning().split("all answer")
    assert (split.reasoning, split.content) == ("", "all answer")
    assert NoReasoning().streamer().feed("x").content == "x"
