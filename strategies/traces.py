"""Samples of one prompt drawn as separate engine requests, so that any one
of them can be stopped in the engine while the others run on.

A fanned-out request (``fan_out``) can only be stopped whole. vLLM's own
``n`` is built the same way underneath (one engine request per child,
sharing the prompt's KV blocks through the prefix cache), so separate
requests cost the engine the same; they are sent together and batch
together. With a seed ``s``, sample ``i`` gets ``s + i``, the seed vLLM gives
the ``i``-th child of a fanned-out request: the same samples either way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType

from ponder.core.generation import Generator, Prompt, SampleDelta, Sampling

OnEvent = Callable[[str], Awaitable[None]]
"""Where a run over traces reports what it does (progress lines, streamed
as reasoning)."""
_DONE = None


class Traces:
    """``async with Traces(...) as traces: async for delta in traces``:
    the deltas of every sample, interleaved, each with its sample's index;
    ``stop(index)`` ends one sample in the engine at once: cancelling its
    task closes its stream, which aborts its request. Leaving the block
    stops every sample still running."""

    def __init__(
        self, gen: Generator, prompt: Prompt, sampling: Sampling, indices: Sequence[int]
    ) -> None:
        self._gen = gen
        self._prompt = prompt
        self._sampling = sampling
        self._queue: asyncio.Queue[tuple[int, SampleDelta | BaseException | None]] = (
            asyncio.Queue()
        )
        self._running: dict[int, asyncio.Task[None]] = {}
        self._indices = list(indices)

    async def __aenter__(self) -> Traces:
        for index in self._indices:
            task = asyncio.create_task(self._pump(index))
            # A done callback runs however the task ends, even when it is
            # cancelled before it starts, and after everything it queued.
            task.add_done_callback(lambda _task, i=index: self._queue.put_nowait((i, _DONE)))
            self._running[index] = task
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self, index: int) -> None:
        """The deltas it already made still come (they are counted), then
        no more."""
        task = self._running.get(index)
        if task is not None:
            task.cancel()

    async def __aiter__(self) -> AsyncIterator[SampleDelta]:
        while self._running:
            index, item = await self._queue.get()
            if item is _DONE:
                del self._running[index]
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item

    async def _pump(self, index: int) -> None:
        sampling = self._sampling
        if sampling.seed is not None:
            sampling = replace(sampling, seed=sampling.seed + index)
        try:
            async with contextlib.aclosing(self._gen.stream(self._prompt, 1, sampling)) as deltas:
                async for delta in deltas:
                    self._queue.put_nowait((index, replace(delta, index=index)))
        except Exception as error:  # noqa: BLE001 - handed to the consumer, raised there
            self._queue.put_nowait((index, error))


@dataclass
class TokenEnds:
    """Where each delta of one sample ended, to cut the sample at a token
    count the same way however its deltas were timed."""

    ends: list[tuple[int, int]] = field(default_factory=list)
    """(tokens, characters) at the end of each delta."""

    @property
    def tokens(self) -> int:
        return self.ends[-1][0] if self.ends else 0

    def add(self, tokens: int, chars: int) -> None:
        before_tokens, before_chars = self.ends[-1] if self.ends else (0, 0)
        self.ends.append((before_tokens + tokens, before_chars + chars))

    def cut(self, at: int) -> tuple[int, int]:
        """(tokens, characters) at the end of the first delta reaching ``at``."""
        return next(end for end in self.ends if end[0] >= at)
