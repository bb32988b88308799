"""Fair admission of samples (server/admission.py): the scheduler's rules, the
chunked fan-out that keeps one request's sampling exactly as one engine
request would make it, and fairness through the real app over ASGI, with a
generator that holds heavy requests for as long as the test likes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ponder.core.generation import Generation, Prompt, SampleDelta, Sampling
from ponder.server.admission import AdmittedGenerator, SampleScheduler, Ticket, chunks

from ..asgi import asgi_app, asgi_client
from ..fakes import ScriptedGenerator

SAMPLING = Sampling(max_tokens=8, seed=100)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_chunks_cover_every_child_once() -> None:
    assert chunks(10, 4) == [(0, 4), (4, 4), (8, 2)]
    assert chunks(3, 8) == [(0, 3)]


async def test_a_request_with_nothing_running_gets_a_turn_past_capacity() -> None:
    scheduler = SampleScheduler(capacity=4, chunk=4)
    heavy, small = Ticket(), Ticket()
    async with scheduler.turn(heavy, 4):
        waiting = asyncio.create_task(_hold(scheduler, heavy, 4))
        await _settle()
        assert scheduler.waiting == 4  # the heavy request's second chunk waits...
        async with scheduler.turn(small, 1):  # ...and the small one goes at once
            assert scheduler.running == 5
        assert not waiting.done()
    await waiting
    assert scheduler.running == 0 and scheduler.waiting == 0


async def test_a_freed_slot_goes_to_the_request_with_the_fewest_running() -> None:
    scheduler = SampleScheduler(capacity=3, chunk=2)
    a, b = Ticket(), Ticket()
    order: list[str] = []
    a_holds, b_holds = asyncio.Event(), asyncio.Event()
    first_a = asyncio.create_task(_hold(scheduler, a, 2, until=a_holds))
    first_b = asyncio.create_task(_hold(scheduler, b, 1, until=b_holds))
    await _settle()
    later_a = asyncio.create_task(_hold(scheduler, a, 1, order, "a"))
    await _settle()
    b_again = asyncio.Event()
    later_b = asyncio.create_task(_hold(scheduler, b, 1, order, "b", until=b_again))
    await _settle()
    assert scheduler.running == 3 and scheduler.waiting == 2

    b_holds.set()  # one slot frees: B has fewer running than A, though A asked first
    await first_b
    await _settle()
    assert order == ["b"] and not later_a.done()
    a_holds.set()
    b_again.set()
    await asyncio.gather(first_a, later_a, later_b)
    assert order == ["b", "a"] and scheduler.running == 0


async def test_a_cancelled_wait_takes_no_slot() -> None:
    scheduler = SampleScheduler(capacity=2, chunk=2)
    ticket = Ticket()
    async with scheduler.turn(ticket, 2):
        waiting = asyncio.create_task(_hold(scheduler, ticket, 2))
        await _settle()
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        assert scheduler.waiting == 0
    assert scheduler.running == 0 and ticket.running == 0


async def test_a_wait_cancelled_as_a_slot_frees_takes_no_slot() -> None:
    """The slot frees before the cancelled task runs again to leave the
    queue (short-m@k and pruning cancel waiting samples as others end):
    nothing is granted to it, so no slot is held forever, and the request
    that freed the slot ends cleanly."""
    scheduler = SampleScheduler(capacity=1, chunk=1)
    ticket = Ticket()
    release = asyncio.Event()
    holding = asyncio.create_task(_hold(scheduler, ticket, 1, until=release))
    await _settle()
    waiting = asyncio.create_task(_hold(scheduler, ticket, 1))
    await _settle()
    assert scheduler.waiting == 1
    release.set()  # the holder wakes first...
    waiting.cancel()  # ...and the waiter is cancelled before it runs again
    ended = await asyncio.gather(holding, waiting, return_exceptions=True)
    assert ended[0] is None and isinstance(ended[1], asyncio.CancelledError)
    assert scheduler.running == 0 and ticket.running == 0 and scheduler.waiting == 0


async def _hold(scheduler: SampleScheduler, ticket: Ticket, size: int,
                order: list[str] | None = None, name: str = "",
                until: asyncio.Event | None = None) -> None:
    async with scheduler.turn(ticket, size):
        if order is not None:
            order.append(name)
        if until is not None:
            await until.wait()


def _numbered() -> ScriptedGenerator:
    """Sample i of a call seeded s says ``seed s+i``: what vLLM's children get."""
    return ScriptedGenerator(lambda _p, n, s: [f"seed {(s.seed or 0) + i}" for i in range(n)])


async def test_a_chunked_fan_out_is_the_one_request_it_replaces() -> None:
    inner = _numbered()
    generator = AdmittedGenerator(inner, SampleScheduler(capacity=8, chunk=4), Ticket())
    generation = await generator.generate(Prompt(text="q"), 10, SAMPLING)
    assert [s.text for s in generation.samples] == [f"seed {100 + i}" for i in range(10)]
    assert [n for _, n, _ in inner.calls] == [4, 4, 2]
    assert all(prompt.token_ids is not None for prompt, _, _ in inner.calls)  # rendered once
    assert generation.prompt_tokens == 7  # one prompt, as one request reports it


async def test_a_chunked_stream_keeps_each_sample_whole_and_in_its_place() -> None:
    inner = _numbered()
    generator = AdmittedGenerator(inner, SampleScheduler(capacity=8, chunk=3), Ticket())
    texts: dict[int, str] = {}
    async for delta in generator.stream(Prompt(text="q"), 7, SAMPLING):
        texts[delta.index] = texts.get(delta.index, "") + delta.text
    assert texts == {i: f"seed {100 + i}" for i in range(7)}


async def test_closing_a_stream_early_aborts_every_part_and_frees_the_slots() -> None:
    inner = _numbered()
    scheduler = SampleScheduler(capacity=2, chunk=2)
    ticket = Ticket()
    stream = AdmittedGenerator(inner, scheduler, ticket).stream(Prompt(text="q"), 6, SAMPLING)
    first = await anext(stream)
    assert first.text
    await stream.aclose()
    assert scheduler.running == 0 and scheduler.waiting == 0 and ticket.running == 0
    assert inner.closed_streams == len(inner.calls)


BODY = {"model": "smollm2", "max_tokens": 8}


class HeavyHeldGenerator(ScriptedGenerator):
    """Answers at once, except prompts that say HEAVY: those wait for
    ``release``."""

    def __init__(self) -> None:
        super().__init__(lambda _p, n, _s: ["The answer is 4."] * n)
        self.release = asyncio.Event()

    async def _hold(self, prompt: Prompt) -> None:
        if "HEAVY" in str(prompt.messages):
            await self.release.wait()

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        await self._hold(prompt)
        return await super().generate(prompt, n, sampling)

    async def stream(self, prompt: Prompt, n: int, sampling: Sampling) -> AsyncIterator[SampleDelta]:
        await self._hold(prompt)
        async for delta in super().stream(prompt, n, sampling):
            yield delta


async def test_a_small_request_is_served_while_a_heavy_one_fills_the_engine() -> None:
    generator = HeavyHeldGenerator()
    scheduler = SampleScheduler(capacity=4, chunk=2)
    async with asgi_client(asgi_app(generator, scheduler=scheduler)) as client:
        heavy = asyncio.create_task(client.post("/v1/chat/completions", json={
            **BODY, "messages": [{"role": "user", "content": "HEAVY: 2 + 2?"}],
            "temperature": 0.7, "strategy": {"name": "self_consistency", "n": 16},
        }))
        while scheduler.running < 4:
            await asyncio.sleep(0.01)
        assert scheduler.waiting == 12  # the rest of the fan-out waits its turn

        small = await client.post("/v1/chat/completions", json={
            **BODY, "messages": [{"role": "user", "content": "2 + 2?"}]})
        assert small.status_code == 200 and not heavy.done()
        metrics = (await client.get("/metrics")).text
        assert "ponder_samples_running 4.0" in metrics
        assert "ponder_samples_waiting 12.0" in metrics

        generator.release.set()
        response = await heavy
    assert response.status_code == 200
    assert response.json()["ponder"]["samples"] == 16
    assert scheduler.running == 0 and scheduler.waiting == 0
