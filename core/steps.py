"""What a reasoning step is.

One definition serves both sides of step-level search: the generator stops
at the end of one step (the delimiter as a stop string), and a verifier
scores a solution cut into the same steps. A request may choose its own
delimiter; a blank line is the default, as in search-and-learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ponder.core.generation import Sample, Sampling, TokenLogprob
from ponder.core.scoring import Solution

STEP_DELIMITER = "\n\n"


@dataclass(frozen=True)
class StepSpec:
    delimiter: str = STEP_DELIMITER

    def split(self, text: str) -> list[str]:
        """The steps of ``text``. Whitespace around a step is dropped, and so
        are empty steps, so a verifier never scores padding; text without the
        delimiter is one step."""
        return [step.strip() for step in text.split(self.delimiter) if step.strip()]

    def one_step(self, sampling: Sampling) -> Sampling:
        """``sampling`` for generating one step: it stops after the delimiter,
        which stays in the text (and in the token ids the next step continues
        from)."""
        return replace(sampling, stop=(self.delimiter, *sampling.stop), include_stop=True)

    def ends_step(self, sample: Sample) -> bool:
        """The sample stopped at the end of a step, not of the solution."""
        return sample.stop_reason == "stop" and sample.stop_string == self.delimiter

    def solution(self, text: str, logprobs: Sequence[TokenLogprob] | None = None) -> Solution:
        """A whole sample as a verifier sees it: its steps and, when the
        sample carries them, each step's tokens (a token belongs to the step
        its text starts in; tokens of the delimiters belong to none)."""
        spans = self._spans(text)
        steps = tuple(text[start:end] for start, end in spans)
        if logprobs is None:
            return Solution(steps)
        per_step: list[list[TokenLogprob]] = [[] for _ in spans]
        offset, step = 0, 0
        for token in logprobs:
            while step < len(spans) and offset >= spans[step][1]:
                step += 1
            if step < len(spans) and offset >= spans[step][0]:
                per_step[step].append(token)
            offset += len(token.token)
        return Solution(steps, logprobs=tuple(map(tuple, per_step)))

    def _spans(self, text: str) -> list[tuple[int, int]]:
        """Where each step of :meth:`split` lies in ``text``."""
        spans, start = [], 0
        for piece in text.split(self.delimiter):
            stripped = piece.strip()
            if stripped:
                begin = start + piece.index(stripped)
                spans.append((begin, begin + len(stripped)))
            start += len(piece) + len(self.delimiter)
        return spans


DEFAULT_STEPS = StepSpec()
