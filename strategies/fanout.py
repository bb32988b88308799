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

from ponder.core.generation import (
    Generator,
    Prompt,
    RequestRejected,
    Sample,
    SampleCollector,
    Sampling,
)

OnFinished = Callable[[int, Sample], Awaitable[bool]]
"""Called as each sample finishes; returning True stops the others."""


@dataclass
class FanOut:
    samples: list[Sample]
    """In index order; samples cut short by an early stop have finish_reason
    "abort" and keep the tokens they had (they were generated, so they count)."""
    stopped_early: bool = False


def check_distinct(n: int, sampling: Sampling) -> None:
    if n > 1 and sampling.temperature == 0:
        raise RequestRejected(
            f"This strategy draws {n} samples; at temperature 0 they would all be the same.",
            param="temperature",
        )


async def fan_out(
    gen: Generator, prompt: Prompt, n: int, sampling: Sampling,
    on_finished: OnFinished | None = None,
) -> FanOut:
    check_distinct(n, sampling)
    if on_finished is None:
        return FanOut((await gen.generate(prompt, n, sampling)).samples)
    collected = SampleCollector(n)
    stopped = False
    async with contextlib.aclosing(gen.stream(prompt, n, sampling)) as deltas:
        async for delta in deltas:
            sample = collected.add(delta)
            if sample is not None and await on_finished(delta.index, sample) and collected.running:
                stopped = True
                break
    return FanOut(collected.generation().samples, stopped)
