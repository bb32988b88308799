"""What the multi-sample strategies share: each sample's reasoning/answer
split and extracted answer, computed once, and the result built from the
chosen sample with reasoning tokens counted over every sample."""

from __future__ import annotations

from pydantic import Field

from ponder.core.answers import WHOLE_ANSWER_FORMATS, AnswerFormat, text_key
from ponder.core.generation import Generator, RequestRejected, Sample
from ponder.strategies.answers import extract_answer
from ponder.strategies.base import (
    Candidate,
    EarlyExitOption,
    Emitter,
    StrategyConfig,
    StrategyResult,
    Task,
)
from ponder.strategies.fanout import FanOut
from ponder.strategies.logprobs import content_logprobs
from ponder.strategies.prompts import PromptStyle, chosen_style
from ponder.strategies.reasoning import ReasoningSplitter, Split
from ponder.strategies.tool_calls import calls_answer


def answer_format_for(configured: AnswerFormat | None, task: Task) -> AnswerFormat:
    """The answer format a vote uses: the one asked for, else what the
    request's output is: tool calls when it lets the model call tools, JSON
    when it asks for JSON, otherwise ``auto``."""
    if configured == "tool_calls" and task.tools is None:
        raise RequestRejected(
            "answer `tool_calls` votes over the samples' tool calls, but the request offers "
            "no tools to call (or its tool_choice is `none`).",
            param="strategy.answer",
        )
    if configured is not None:
        return configured
    if task.tools is not None:
        return "tool_calls"
    return "auto" if task.sampling.json_output is None else "json"


class SolutionsConfig(StrategyConfig):
    """What every strategy that compares several solutions is asked: how to
    prompt for them and how to read their answers."""

    prompt: PromptStyle = Field("cot", description="`cot` adds the step-by-step instruction; "
                                "`direct` sends the messages as they are.")
    answer: AnswerFormat | None = Field(
        None, description="How to extract each solution's answer (default: `tool_calls` when "
        "the request offers tools, `json` when it asks for JSON, else `auto`)."
    )

    def prompt_style(self, task: Task) -> PromptStyle:
        """The configured style, unless the request rules it out (only an
        explicitly asked-for style is an error then)."""
        return chosen_style(self.prompt, task, "prompt" in self.model_fields_set,
                            param="strategy.prompt")

    def answer_format(self, task: Task) -> AnswerFormat:
        return answer_format_for(self.answer, task)


class SampledConfig(SolutionsConfig, EarlyExitOption):
    """A strategy that draws whole samples and reads their answers: each
    sample may exit early, probed with its prompt style's cue."""

    def probed_as(self, task: Task) -> tuple[str, str]:
        return self.prompt_style(task), self.answer_format(task)


class SampledAnswers:
    def __init__(
        self, splitter: ReasoningSplitter, answer_format: AnswerFormat, gen: Generator, task: Task
    ) -> None:
        self._splitter = splitter
        self._format = answer_format
        self._gen = gen
        self._tools = task.tools
        self._with_logprobs = task.sampling.logprobs
        self._splits: dict[int, Split] = {}
        self.answers: dict[int, str | None] = {}

    @property
    def _whole(self) -> bool:
        return self._format in WHOLE_ANSWER_FORMATS

    @property
    def unanswered(self) -> int:
        return sum(answer is None for answer in self.answers.values())

    def answer_of(self, index: int, sample: Sample) -> str | None:
        if index in self.answers:
            return self.answers[index]
        split = self._splitter.split(sample.text)
        self._splits[index] = split
        if self._format == "tool_calls":
            answer = self._calls_answer(split.content)
        else:
            # The marked answer first; a sample that never marked one may
            # still say it in its text ("so the answer is 12").
            answer = extract_answer(split.content, self._format) if split.content else None
            if answer is None:
                answer = extract_answer(sample.text, self._format)
        self.answers[index] = answer
        return answer

    def _calls_answer(self, content: str) -> str | None:
        """The calls a sample made; a sample that made none votes with its
        text answer (in the form text answers compare in), so "call f(x)"
        and "reply in words" compete."""
        assert self._tools is not None
        read = self._tools.read(content)
        if read.calls:
            return calls_answer(read.calls)
        text = extract_answer(read.content or "", "text")
        return None if text is None else text_key(text)

    def _split(self, index: int, sample: Sample) -> Split:
        if index not in self._splits:
            self.answer_of(index, sample)
        return self._splits[index]

    def reasoning_tokens(self, index: int, sample: Sample) -> int:
        """Tokens before the answer; all of a sample whose trace is its whole
        text (the direct prompt, where only the extracted answer is shown),
        none of one that is all answer (JSON, tool calls)."""
        split = self._split(index, sample)
        if not split.reasoning:
            return 0 if self._whole else sample.num_tokens
        return self._gen.count_tokens(sample.token_ids, split.reasoning_end)

    def result(self, samples: list[Sample], chosen: int, answer: str | None) -> StrategyResult:
        """The result of choosing ``samples[chosen]``, whose answer won. An
        answer that is a sample's whole content (JSON, tool calls) is
        returned as that sample wrote it; an extracted one as extracted."""
        chosen_sample = samples[chosen]
        split = self._split(chosen, chosen_sample)
        candidates = [
            Candidate(s.text, self.answers.get(i), s.finish_reason, s.num_tokens)
            for i, s in enumerate(samples)
        ]
        content = split.content if self._whole or answer is None else answer
        return StrategyResult(
            content=content,
            reasoning=split.reasoning or (None if self._whole else chosen_sample.text) or None,
            finish_reason="length" if chosen_sample.finish_reason == "length" else "stop",
            logprobs=(
                content_logprobs(self._gen, chosen_sample, content, split.content)
                if self._with_logprobs else None
            ),
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
        await emit.content(result.content, logprobs=result.logprobs)
