"""Is a small request still fast while heavy ones run? The issue-14 probe.

Eight small clients (strategy ``none``, 16 tokens, one request after another)
are timed alone, then again while two ``self_consistency`` requests of n=64
run on the same server, in one run: the ratios of their p50 and p99
latencies say what the heavy requests cost everyone else (target: p99 at most
3x alone), and the heavy requests must still finish.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx

SMALL_PROMPT = "Write a short story about a cat who learns to fly."
HEAVY_PROMPT = "A farmer has 17 sheep and buys 5 more, then sells 8. How many sheep are left?"


@dataclass
class Phase:
    latencies: list[float]

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1]

    def summary(self) -> dict[str, float]:
        return {"requests": len(self.latencies), "p50_s": round(self.percentile(50), 3),
                "p99_s": round(self.percentile(99), 3), "max_s": round(max(self.latencies), 3)}


def _small(model: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": SMALL_PROMPT}],
            "max_tokens": 16, "temperature": 0.7, "strategy": "none"}


def _heavy(model: str, n: int, max_tokens: int, seed: int) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": HEAVY_PROMPT}],
            "max_tokens": max_tokens, "temperature": 0.8, "seed": seed,
            "strategy": {"name": "self_consistency", "n": n}}


async def _small_clients(client: httpx.AsyncClient, model: str, clients: int,
                         per_client: int) -> Phase:
    async def one_client() -> list[float]:
        latencies = []
        for _ in range(per_client):
            start = time.perf_counter()
            response = await client.post("/v1/chat/completions", json=_small(model))
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)
        return latencies

    per_client_latencies = await asyncio.gather(*(one_client() for _ in range(clients)))
    return Phase([latency for latencies in per_client_latencies for latency in latencies])


async def _engine_busy(client: httpx.AsyncClient) -> bool:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith("ponder_engine_unfinished_requests "):
            return float(line.split()[1]) > 0
    return False


async def probe(base_url: str, model: str, *, clients: int = 8, per_client: int = 8,
                heavy: int = 2, heavy_n: int = 64, heavy_max_tokens: int = 192,
                api_key: str | None = None, round_index: int = 0) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    limits = httpx.Limits(max_connections=clients + heavy + 2)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits,
                                 timeout=httpx.Timeout(1800)) as client:
        await _small_clients(client, model, clients, 1)  # warm-up
        alone = await _small_clients(client, model, clients, per_client)

        async def heavy_request(seed: int) -> dict[str, Any]:
            start = time.perf_counter()
            response = await client.post("/v1/chat/completions",
                                         json=_heavy(model, heavy_n, heavy_max_tokens, seed))
            body = response.json()
            return {"status": response.status_code, "seconds": round(time.perf_counter() - start, 1),
                    "samples": body.get("ponder", {}).get("samples"),
                    "completion_tokens": body.get("usage", {}).get("completion_tokens")}

        heavy_tasks = [asyncio.create_task(heavy_request(round_index * 1000 + i * heavy_n))
                       for i in range(heavy)]
        while not await _engine_busy(client):
            await asyncio.sleep(0.05)
        await asyncio.sleep(2)  # the heavy samples are decoding, not just queued
        loaded = await _small_clients(client, model, clients, per_client)
        heavy_still_running = sum(not task.done() for task in heavy_tasks)
        heavy_results = await asyncio.gather(*heavy_tasks)
    return {
        "alone": alone.summary(),
        "with_heavy": loaded.summary(),
        "p50_ratio": round(loaded.percentile(50) / alone.percentile(50), 2),
        "p99_ratio": round(loaded.percentile(99) / alone.percentile(99), 2),
        "heavy_running_throughout": heavy_still_running == heavy,
        "heavy": heavy_results,
    }
