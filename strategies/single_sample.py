"""One sample per choice, streamed token by token when asked: the body of
``none`` and ``cot``, which differ only in the prompt they send.

OpenAI's ``n`` asks for n choices, and these strategies draw them as vLLM's
server does: as the n children of ONE engine request, which share the
prompt's KV cache.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from ponder.core.generation import Generator, Sample, SampleCollector, SampleDelta, TokenLogprob
from ponder.strategies.base import Candidate, Emitter, StrategyResult, Task
from ponder.strategies.logprobs import content_logprobs
from ponder.strategies.prompts import PromptStyle, apply_prompt, splitter_for
from ponder.strategies.reasoning import ReasoningSplitter, Split, StreamSplitter


async def run_single_samples(
    task: Task, gen: Generator, style: PromptStyle, n: int,
    emitters: Sequence[Emitter] | None = None,
) -> list[StrategyResult]:
    """``n`` choices from one engine request; with ``emitters`` (one per
    choice) each streams as it is generated."""
    prompt = apply_prompt(task.prompt, style)
    splitter = splitter_for(style, task.splitter)
    if emitters is None:
        samples = (await gen.generate(prompt, n, task.sampling)).samples
    else:
        choices = [_StreamedChoice(splitter.streamer(), emit) for emit in emitters]
        collected = SampleCollector(n)
        async with contextlib.aclosing(gen.stream(prompt, n, task.sampling)) as deltas:
            async for delta in deltas:
                collected.add(delta)
                await choices[delta.index].feed(delta)
        for choice in choices:
            await choice.finish()
        samples = collected.generation().samples
    return [_result(sample, splitter, gen) for sample in samples]


@dataclass
class _Token:
    id: int
    end: int
    """Where the text of its delta ends in the sample."""
    logprob: TokenLogprob | None


class _StreamedChoice:
    """One choice on its way to the client: its text split into reasoning and
    content as it arrives, each piece of content sent with the tokens that
    spell it (a token belongs to the content when its delta's text reaches
    into it)."""

    def __init__(self, streamer: StreamSplitter, emit: Emitter) -> None:
        self._streamer = streamer
        self._emit = emit
        self._text = ""
        self._tokens: list[_Token] = []
        self._sent = 0  # tokens already sent, or passed over as reasoning

    async def feed(self, delta: SampleDelta) -> None:
        self._text += delta.text
        logprobs = delta.logprobs or [None] * len(delta.token_ids)
        self._tokens += [_Token(i, len(self._text), lp) for i, lp in zip(delta.token_ids, logprobs)]
        # Content always ends where the text so far ends: splitters hold text
        # back only while it might still be reasoning.
        await self._send(self._streamer.feed(delta.text, delta.token_ids), len(self._text))

    async def finish(self) -> None:
        split = self._streamer.finish()
        # What a splitter gives out at the end (the last line of a trace whose
        # answer was never marked) is the last occurrence of that text.
        await self._send(split, self._text.rfind(split.content) + len(split.content))

    async def _send(self, split: Split, content_end: int) -> None:
        if split.reasoning:
            await self._emit.reasoning(split.reasoning)
        if not split.content:
            return
        start = content_end - len(split.content)
        tokens = [t for t in self._tokens[self._sent:] if t.end > start]
        self._sent = len(self._tokens)
        logprobs = [t.logprob for t in tokens]
        await self._emit.content(
            split.content, [t.id for t in tokens],
            None if None in logprobs else logprobs,  # type: ignore[arg-type]
        )


def _result(sample: Sample, splitter: ReasoningSplitter, gen: Generator) -> StrategyResult:
    split = splitter.split(sample.text)
    return StrategyResult(
        content=split.content,
        reasoning=split.reasoning or None,
        finish_reason=sample.finish_reason,
        logprobs=content_logprobs(gen, sample, split.content),
        reasoning_tokens=(
            gen.count_tokens(sample.token_ids, split.reasoning_end) if split.reasoning else 0
        ),
        candidates=[Candidate(sample.text, None, sample.finish_reason, sample.num_tokens)],
    )
