"""Admission limits through the real app and HTTP stack (over ASGI, with a
scripted generator in place of the engine, so a request can be held open at
will): 429 past the concurrency limit, 413 past the body limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from ponder.core.generation import Generation, Prompt, SampleDelta, Sampling

from ..asgi import asgi_app, asgi_client
from ..fakes import ScriptedGenerator

BODY = {"model": "smollm2", "messages": [{"role": "user", "content": "Say hi."}]}


class HeldGenerator(ScriptedGenerator):
    """Answers only once ``release`` is set, so requests stay in flight."""

    def __init__(self) -> None:
        super().__init__(lambda _p, n, _s: ["hi there"] * n)
        self.release = asyncio.Event()
        self.waiting = 0

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        self.waiting += 1
        await self.release.wait()
        return await super().generate(prompt, n, sampling)

    async def stream(self, prompt: Prompt, n: int, sampling: Sampling) -> AsyncIterator[SampleDelta]:
        self.waiting += 1
        await self.release.wait()
        async for delta in super().stream(prompt, n, sampling):
            yield delta


def _client(generator: HeldGenerator, **limits: int) -> httpx.AsyncClient:
    return asgi_client(asgi_app(generator, **limits))


def _in_flight(metrics_text: str) -> float:
    gauge = next(line for line in metrics_text.splitlines()
                 if line.startswith("ponder_requests_in_flight "))
    return float(gauge.split()[1])


async def test_past_the_concurrency_limit_a_request_gets_429_then_is_served_later() -> None:
    generator = HeldGenerator()
    async with _client(generator, max_concurrent_requests=2) as client:
        held = [asyncio.create_task(client.post("/v1/chat/completions", json=BODY))
                for _ in range(2)]
        while generator.waiting < 2:
            await asyncio.sleep(0.01)
        assert _in_flight((await client.get("/metrics")).text) == 2

        refused = await client.post("/v1/chat/completions", json=BODY)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "server_overloaded"

        generator.release.set()
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        assert _in_flight((await client.get("/metrics")).text) == 0
        served = await client.post("/v1/chat/completions", json=BODY)
        assert served.json()["choices"][0]["message"]["content"] == "hi there"
        assert 'ponder_requests_total{status="429",strategy="none",stream="false"} 1.0' in (
            await client.get("/metrics")).text


async def test_a_finished_stream_and_a_failed_request_give_their_slot_back() -> None:
    generator = HeldGenerator()
    generator.release.set()
    async with _client(generator, max_concurrent_requests=1) as client:
        streamed = await client.post("/v1/chat/completions", json={**BODY, "stream": True})
        assert streamed.text.rstrip().endswith("data: [DONE]")
        # Admitted, then refused inside the strategy: this server has no PRM.
        no_prm = await client.post(
            "/v1/chat/completions", json={**BODY, "strategy": {"name": "best_of_n", "n": 2}})
        assert no_prm.status_code == 400, no_prm.text
        assert (await client.post("/v1/chat/completions", json=BODY)).status_code == 200
        assert _in_flight((await client.get("/metrics")).text) == 0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_body_over_the_limit_gets_413_before_it_is_parsed(chunked: bool) -> None:
    generator = HeldGenerator()
    generator.release.set()
    big = json.dumps({**BODY, "messages": [{"role": "user", "content": "x" * 5000}]}).encode()

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 1000):
            yield big[start:start + 1000]

    async with _client(generator, max_request_bytes=4096) as client:
        response = await client.post(
            "/v1/chat/completions", content=pieces() if chunked else big,
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413, response.text
        error = response.json()["error"]
        assert error["code"] == "request_too_large" and "4096 bytes" in error["message"]
        assert generator.calls == []
        assert (await client.post("/v1/chat/completions", json=BODY)).status_code == 200
