"""Fair admission of samples into the engine.

Every sample the engine decodes slows the whole batch a little (on a CPU, a
lot), so what must be shared is samples, not requests. The engine runs at
most ``capacity`` samples at once over all requests; beyond that work waits
here, and each freed slot goes to the request with the fewest samples
running. A request with nothing running always gets a turn at once, so one
request of a single sample never waits behind a fan-out of 64, and every
request keeps making progress. A fan-out larger than ``chunk`` is sent as
several engine requests of at most ``chunk`` children (seeded children keep
the seeds one request would give them), so a heavy request holds the batch
a chunk at a time rather than all at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace

from ponder.core.generation import Generation, Generator, Prompt, SampleDelta, Sampling
from ponder.core.tasks import gather_all

_arrivals = itertools.count()


@dataclass(eq=False)
class Ticket:
    """One request's share: how many of its samples are in the engine."""

    running: int = 0
    order: int = field(default_factory=lambda: next(_arrivals))


@dataclass(eq=False)
class _Waiter:
    ticket: Ticket
    size: int
    granted: asyncio.Future[None]


class SampleScheduler:
    def __init__(self, capacity: int, chunk: int) -> None:
        self.capacity = capacity
        self.chunk = chunk
        self.running = 0
        self._waiting: list[_Waiter] = []

    @classmethod
    def unlimited(cls) -> SampleScheduler:
        """No cap and no chunks: every call is one engine request, at once."""
        return cls(capacity=sys.maxsize, chunk=sys.maxsize)

    @property
    def waiting(self) -> int:
        """Samples waiting for a turn."""
        return sum(waiter.size for waiter in self._waiting)

    @contextlib.asynccontextmanager
    async def turn(self, ticket: Ticket, size: int) -> AsyncIterator[None]:
        """Hold ``size`` slots for ``ticket`` while the body runs."""
        waiter = _Waiter(ticket, size, asyncio.get_running_loop().create_future())
        self._waiting.append(waiter)
        self._grant()
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            elif waiter.granted.done() and not waiter.granted.cancelled():
                self._release(ticket, size)  # granted just as it was cancelled
            raise
        try:
            yield
        finally:
            self._release(ticket, size)

    def _fits(self, waiter: _Waiter) -> bool:
        return waiter.ticket.running == 0 or self.running + waiter.size <= self.capacity

    def _grant(self) -> None:
        while self._waiting:
            waiter = min(self._waiting, key=lambda w: (w.ticket.running, w.ticket.order))
            if waiter.granted.cancelled():
                # Its task was cancelled and has not run since to leave the
                # queue: granting it would hold slots no one ever releases.
                self._waiting.remove(waiter)
                continue
            if not self._fits(waiter):
                return
            self._waiting.remove(waiter)
            self.running += waiter.size
            waiter.ticket.running += waiter.size
            waiter.granted.set_result(None)

    def _release(self, ticket: Ticket, size: int) -> None:
        self.running -= size
        ticket.running -= size
        self._grant()


def chunks(n: int, chunk: int) -> list[tuple[int, int]]:
    """``n`` children as (first index, count) parts of at most ``chunk``."""
    return [(start, min(chunk, n - start)) for start in range(0, n, chunk)]


def _from_child(sampling: Sampling, first: int) -> Sampling:
    """A part's sampling: vLLM seeds child i of a request seeded s with s + i."""
    return sampling if sampling.seed is None else replace(sampling, seed=sampling.seed + first)


class AdmittedGenerator:
    """One request's view of the engine: every call waits for its turn."""

    def __init__(self, inner: Generator, scheduler: SampleScheduler, ticket: Ticket) -> None:
        self._inner = inner
        self._scheduler = scheduler
        self._ticket = ticket

    async def render(self, prompt: Prompt) -> Prompt:
        return await self._inner.render(prompt)

    def count_tokens(self, token_ids: Sequence[int], chars: int) -> int:
        return self._inner.count_tokens(token_ids, chars)

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        prompt = await self._inner.render(prompt)  # once, not once per part

        async def part(first: int, size: int) -> Generation:
            async with self._scheduler.turn(self._ticket, size):
                return await self._inner.generate(prompt, size, _from_child(sampling, first))

        parts = await gather_all(*(part(first, size)
                                     for first, size in chunks(n, self._scheduler.chunk)))
        return Generation(
            parts[0].prompt_tokens,
            [sample for generation in parts for sample in generation.samples],
            parts[0].cached_tokens,
        )

    async def stream(
        self, prompt: Prompt, n: int, sampling: Sampling
    ) -> AsyncIterator[SampleDelta]:
        prompt = await self._inner.render(prompt)
        parts = chunks(n, self._scheduler.chunk)
        deltas: asyncio.Queue[SampleDelta | BaseException | None] = asyncio.Queue()

        async def pump(first: int, size: int) -> None:
            try:
                async with self._scheduler.turn(self._ticket, size), contextlib.aclosing(
                    self._inner.stream(prompt, size, _from_child(sampling, first))
                ) as part:
                    async for delta in part:
                        deltas.put_nowait(replace(delta, index=delta.index + first))
            except Exception as error:  # noqa: BLE001 - re-raised to the consumer below
                deltas.put_nowait(error)
            else:
                deltas.put_nowait(None)

        pumps = [asyncio.create_task(pump(first, size)) for first, size in parts]
        try:
            ended = 0
            while ended < len(pumps):
                item = await deltas.get()
                if item is None:
                    ended += 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            # Closing the stream early (an early stop, a budget, a client
            # that left) aborts every part still running or waiting.
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)



