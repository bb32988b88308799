"""Drawing n samples of one prompt in ONE engine request (the children share
the prompt's KV cache), optionally watching each sample finish.

Strategies that vote or score use the watcher to stream progress and to stop
early: when it says stop, the stream is closed, which aborts the children
still running in the engine at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ponder.strategies.base import (
    FinishReason,
    Generator,
    Prompt,
    RequestRejected,
    Sample,
    Sampling,
)

OnFinished = Callable[[int, Sample], Awaitable[bool]]
"""Called as each sample finishes; returning True stops the others."""


@dataclass
class FanOut:
    prompt_tokens: int
    samples: list[Sample]
    """In index order; samples cut short by an early stop have finish_reason
    "abort" and keep the tokens they had (they were generated, so they count)."""
    stopped_early: bool = False


async def fan_out(
    gen: Generator, prompt: Prompt, n: int, sampling: Sampling,
    on_finished: OnFinished | None = None,
) -> FanOut:
    if n > 1 and sampling.temperature == 0:
        raise RequestRejected(
            f"This strategy draws {n} samples; at temperature 0 they would all be the same.",
            param="temperature",
        )
    if on_finished is None:
        generation = await gen.generate(prompt, n, sampling)
        return FanOut(generation.prompt_tokens, generation.samples)
    texts: list[list[str]] = [[] for _ in range(n)]
    token_ids: list[list[int]] = [[] for _ in range(n)]
    logprobs: list[float | None] = [None] * n
    reasons: list[FinishReason | None] = [None] * n
    prompt_tokens, stopped = 0, False
    async with contextlib.aclosing(gen.stream(prompt, n, sampling)) as deltas:
        async for delta in deltas:
            i = delta.index
            texts[i].append(delta.text)
            token_ids[i].extend(delta.token_ids)
            logprobs[i] = delta.cumulative_logprob
            prompt_tokens = delta.prompt_tokens
            if delta.finish_reason is None:
                continue
            reasons[i] = delta.finish_reason
            sample = Sample("".join(texts[i]), token_ids[i], delta.finish_reason, logprobs[i])
            if await on_finished(i, sample) and None in reasons:
                stopped = True
                break
    samples = [
        Sample("".join(texts[i]), token_ids[i], reasons[i] or "abort", logprobs[i])
        for i in range(n)
    ]
    return FanOut(prompt_tokens, samples, stopped)
