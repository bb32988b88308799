"""Splitting a sample into reasoning (the trace) and content (the answer).

Two sources of the split exist: our chain-of-thought prompt asks for a final
answer after a marker, and thinking models wrap their trace in tags (the
server adapts vLLM's reasoning parsers to the same interface). Streaming and
non-streaming responses must agree on the split, so both go through one
incremental state machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Split:
    reasoning: str
    content: str
    reasoning_end: int = 0
    """Where the trace ends in the sample's text (its tokens up to there are
    reasoning tokens); only set by ``ReasoningSplitter.split``."""


class StreamSplitter(Protocol):
    def feed(self, delta: str, token_ids: Sequence[int] = ()) -> Split:
        """The reasoning and content text that ``delta`` (made of
        ``token_ids``) completes."""
        ...

    def finish(self) -> Split:
        """Whatever was held back, once the sample has ended."""
        ...


class ReasoningSplitter(Protocol):
    def split(self, text: str) -> Split: ...

    def streamer(self) -> StreamSplitter: ...


class NoReasoning:
    """For models and prompts with no trace: everything is content."""

    def split(self, text: str) -> Split:
        return Split("", text)

    def streamer(self) -> StreamSplitter:
        return _PassThrough()


class _PassThrough:
    def feed(self, delta: str, token_ids: Sequence[int] = ()) -> Split:
        return Split("", delta)

    def finish(self) -> Split:
        return Split("", "")


@dataclass(frozen=True)
class MarkerSplitter:
    """Reasoning first, then ``marker``, then the answer.

    If the marker never comes the model did not separate its answer: the
    whole text is then reasoning and its last line is repeated as the
    answer, in both the streaming and the whole-text form.
    """

    marker: str

    def split(self, text: str) -> Split:
        streamer = self.streamer()
        first, last = streamer.feed(text), streamer.finish()
        end = text.find(self.marker)
        return Split(
            first.reasoning + last.reasoning,
            first.content + last.content,
            reasoning_end=len(text) if end < 0 else end,
        )

    def streamer(self) -> StreamSplitter:
        return _MarkerStream(self.marker)


class _MarkerStream:
    def __init__(self, marker: str) -> None:
        self._marker = marker
        self._seen = ""  # all text so far, until the marker is found
        self._emitted = 0  # characters of _seen already sent as reasoning
        self._in_answer = False
        self._answer_started = False

    def feed(self, delta: str, token_ids: Sequence[int] = ()) -> Split:
        if self._in_answer:
            return Split("", self._answer_text(delta))
        self._seen += delta
        start = self._seen.find(self._marker, max(0, self._emitted - len(self._marker)))
        if start >= 0:
            self._in_answer = True
            reasoning = self._seen[self._emitted : start]
            answer = self._answer_text(self._seen[start + len(self._marker) :])
            self._seen = ""
            return Split(reasoning, answer)
        # Hold back a tail that could be the start of a marker split across deltas.
        safe = len(self._seen) - self._partial_marker_len()
        reasoning = self._seen[self._emitted : safe]
        self._emitted = max(self._emitted, safe)
        return Split(reasoning, "")

    def finish(self) -> Split:
        if self._in_answer:
            return Split("", "")
        # No marker: all of it was reasoning, and its last line stands in for
        # the answer the model never marked.
        last_line = self._seen.rstrip().rsplit("\n", 1)[-1].strip()
        return Split(self._seen[self._emitted :], last_line)

    def _answer_text(self, delta: str) -> str:
        """Drop the space and markdown emphasis between marker and answer,
        however the deltas cut them."""
        if not self._answer_started:
            delta = delta.lstrip(" *")
            self._answer_started = bool(delta)
        return delta

    def _partial_marker_len(self) -> int:
        for size in range(min(len(self._marker) - 1, len(self._seen)), 0, -1):
            if self._seen.endswith(self._marker[:size]):
                return size
        return 0
