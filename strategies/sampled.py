"""What the multi-sample strategies share: each sample's reasoning/answer
split and extracted answer, computed once, and the result built from the
chosen sample with reasoning tokens counted over every sample."""

from __future__ import annotations

from ponder.core.generation import Generator, Sample
from ponder.strategies.answers import AnswerFormat, extract_answer
from ponder.strategies.base import Candidate, Emitter, StrategyResult
from ponder.strategies.fanout import FanOut
from ponder.strategies.reasoning import ReasoningSplitter, Split


class SampledAnswers:
    def __init__(
        self, splitter: ReasoningSplitter, answer_format: AnswerFormat, gen: Generator
    ) -> None:
        self._splitter = splitter
        self._format = answer_format
        self._gen = gen
        self._splits: dict[int, Split] = {}
        self.answers: dict[int, str | None] = {}

    @property
    def unanswered(self) -> int:
        return sum(answer is None for answer in self.answers.values())

    def answer_of(self, index: int, sample: Sample) -> str | None:
        if index in self.answers:
            return self.answers[index]
        split = self._splitter.split(sample.text)
        self._splits[index] = split
        # The marked answer first; a sample that never marked one may still
        # say it in its text ("so the answer is 12").
        answer = extract_answer(split.content, self._format) if split.content else None
        if answer is None:
            answer = extract_answer(sample.text, self._format)
        self.answers[index] = answer
        return answer

    def _split(self, index: int, sample: Sample) -> Split:
        if index not in self._splits:
            self.answer_of(index, sample)
        return self._splits[index]

    def reasoning_tokens(self, index: int, sample: Sample) -> int:
        """Tokens before the answer; all of a sample whose trace is its whole
        text (the direct prompt, where only the extracted answer is shown)."""
        split = self._split(index, sample)
        if not split.reasoning:
            return sample.num_tokens
        return self._gen.count_tokens(sample.token_ids, split.reasoning_end)

    def result(self, samples: list[Sample], chosen: int, answer: str | None) -> StrategyResult:
        chosen_sample = samples[chosen]
        split = self._split(chosen, chosen_sample)
        candidates = [
            Candidate(s.text, self.answers.get(i), s.finish_reason, s.num_tokens)
            for i, s in enumerate(samples)
        ]
        return StrategyResult(
            content=answer if answer is not None else split.content,
            reasoning=split.reasoning or chosen_sample.text or None,
            finish_reason="length" if chosen_sample.finish_reason == "length" else "stop",
            reasoning_tokens=sum(self.reasoning_tokens(i, s) for i, s in enumerate(samples)),
            answer=answer,
            candidates=candidates,
        )

    def tokens_saved_estimate(self, fanned: FanOut) -> int:
        """Tokens the aborted samples would still have made, had they run as
        long as the finished ones did on average."""
        finished = [s for s in fanned.samples if s.finish_reason != "abort"]
        aborted = [s for s in fanned.samples if s.finish_reason == "abort"]
        if not finished:
            return 0
        mean = sum(s.num_tokens for s in finished) / len(finished)
        return max(0, round(mean * len(aborted)) - sum(s.num_tokens for s in aborted))

    @staticmethod
    async def emit_final(result: StrategyResult, emit: Emitter) -> None:
        if result.reasoning:
            await emit.reasoning(f"\nChosen sample:\n{result.reasoning}")
        await emit.content(result.content)
