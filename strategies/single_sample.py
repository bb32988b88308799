"""One sample, streamed token by token when asked: the body of ``none`` and
``cot``, which differ only in the prompt they send."""

from __future__ import annotations

from ponder.core.generation import Generator, Prompt, Sample, SampleCollector
from ponder.strategies.base import Candidate, Emitter, StrategyResult, Task
from ponder.strategies.prompts import PromptStyle, apply_prompt, splitter_for
from ponder.strategies.reasoning import ReasoningSplitter, Split


async def run_single_sample(
    task: Task, gen: Generator, style: PromptStyle, emit: Emitter | None
) -> StrategyResult:
    prompt = apply_prompt(task.prompt, style)
    splitter = splitter_for(style, task.splitter)
    if emit is None:
        sample = (await gen.generate(prompt, 1, task.sampling)).samples[0]
    else:
        sample = await _stream_one(gen, prompt, task, splitter, emit)
    return _result(sample, splitter, gen)


async def _stream_one(
    gen: Generator, prompt: Prompt, task: Task, splitter: ReasoningSplitter, emit: Emitter
) -> Sample:
    streamer = splitter.streamer()
    collected = SampleCollector(1)
    async for delta in gen.stream(prompt, 1, task.sampling):
        collected.add(delta)
        await _emit(streamer.feed(delta.text, delta.token_ids), emit)
    await _emit(streamer.finish(), emit)
    return collected.sample(0)


async def _emit(split: Split, emit: Emitter) -> None:
    if split.reasoning:
        await emit.reasoning(split.reasoning)
    if split.content:
        await emit.content(split.content)


def _result(sample: Sample, splitter: ReasoningSplitter, gen: Generator) -> StrategyResult:
    split = splitter.split(sample.text)
    return StrategyResult(
        content=split.content,
        reasoning=split.reasoning or None,
        finish_reason=sample.finish_reason,
        reasoning_tokens=(
            gen.count_tokens(sample.token_ids, split.reasoning_end) if split.reasoning else 0
        ),
        candidates=[Candidate(sample.text, None, sample.finish_reason, sample.num_tokens)],
    )
