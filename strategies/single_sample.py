"""One sample, streamed token by token when asked: the body of ``none`` and
``cot``, which differ only in the prompt they send."""

from __future__ import annotations

from ponder.strategies.base import (
    Candidate,
    Emitter,
    FinishReason,
    Generator,
    Prompt,
    Sample,
    StrategyResult,
    Task,
    Usage,
)
from ponder.strategies.prompts import PromptStyle, apply_prompt, splitter_for
from ponder.strategies.reasoning import ReasoningSplitter, Split


async def run_single_sample(
    task: Task, gen: Generator, style: PromptStyle, emit: Emitter | None
) -> StrategyResult:
    prompt = apply_prompt(task.prompt, style)
    splitter = splitter_for(style, task.splitter)
    if emit is None:
        generation = await gen.generate(prompt, 1, task.sampling)
        sample, prompt_tokens = generation.samples[0], generation.prompt_tokens
    else:
        sample, prompt_tokens = await _stream_one(gen, prompt, task, splitter, emit)
    return _result(sample, prompt_tokens, splitter, gen)


async def _stream_one(
    gen: Generator, prompt: Prompt, task: Task, splitter: ReasoningSplitter, emit: Emitter
) -> tuple[Sample, int]:
    streamer = splitter.streamer()
    text, token_ids, prompt_tokens = [], [], 0
    finish_reason: FinishReason = "abort"
    async for delta in gen.stream(prompt, 1, task.sampling):
        text.append(delta.text)
        token_ids.extend(delta.token_ids)
        prompt_tokens = delta.prompt_tokens
        await _emit(streamer.feed(delta.text, delta.token_ids), emit)
        if delta.finish_reason is not None:
            finish_reason = delta.finish_reason
    await _emit(streamer.finish(), emit)
    return Sample("".join(text), token_ids, finish_reason), prompt_tokens


async def _emit(split: Split, emit: Emitter) -> None:
    if split.reasoning:
        await emit.reasoning(split.reasoning)
    if split.content:
        await emit.content(split.content)


def _result(
    sample: Sample, prompt_tokens: int, splitter: ReasoningSplitter, gen: Generator
) -> StrategyResult:
    split = splitter.split(sample.text)
    reasoning_tokens = (
        gen.count_tokens(sample.token_ids, split.reasoning_end) if split.reasoning else 0
    )
    usage = Usage(
        prompt_tokens=prompt_tokens,
        completion_tokens=sample.num_tokens,
        reasoning_tokens=reasoning_tokens,
    )
    return StrategyResult(
        content=split.content,
        reasoning=split.reasoning or None,
        finish_reason=sample.finish_reason,
        usage=usage,
        candidates=[Candidate(sample.text, None, sample.finish_reason, sample.num_tokens)],
    )
