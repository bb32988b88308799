"""A bounded, concurrent chat load against one OpenAI-compatible server,
measuring what a client sees: time to first token, latency, output tokens."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class RequestTiming:
    ttft_s: float
    latency_s: float
    output_tokens: int


@dataclass
class LoadResult:
    server: str
    requests: int
    wall_s: float
    timings: list[RequestTiming]

    @property
    def output_tokens(self) -> int:
        return sum(t.output_tokens for t in self.timings)

    @property
    def throughput(self) -> float:
        return self.output_tokens / self.wall_s

    def percentile(self, field: str, q: float) -> float:
        values = sorted(getattr(t, field) for t in self.timings)
        return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]

    def summary(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "requests": self.requests,
            "wall_s": round(self.wall_s, 3),
            "output_tokens": self.output_tokens,
            "throughput_tok_s": round(self.throughput, 2),
            "latency_p50_s": round(self.percentile("latency_s", 50), 3),
            "latency_p95_s": round(self.percentile("latency_s", 95), 3),
            "ttft_p50_s": round(self.percentile("ttft_s", 50), 3),
            "ttft_p95_s": round(self.percentile("ttft_s", 95), 3),
        }


async def _one(client: httpx.AsyncClient, body: dict[str, Any]) -> RequestTiming:
    start = time.perf_counter()
    first: float | None = None
    tokens = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices", []):
                delta = choice.get("delta", {})
                if first is None and (delta.get("content") or delta.get("reasoning_content")):
                    first = time.perf_counter() - start
    latency = time.perf_counter() - start
    return RequestTiming(ttft_s=first if first is not None else latency, latency_s=latency,
                         output_tokens=tokens)


async def run_load(base_url: str, server: str, bodies: Sequence[dict[str, Any]],
                   concurrency: int, headers: dict[str, str] | None = None) -> LoadResult:
    """Send every body (streaming, with usage) keeping ``concurrency`` in flight."""
    limits = httpx.Limits(max_connections=concurrency)
    timeout = httpx.Timeout(600)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout,
                                 headers=headers) as client:
        async def gated(body: dict[str, Any]) -> RequestTiming:
            async with gate:
                return await _one(client, {**body, "stream": True,
                                           "stream_options": {"include_usage": True}})

        start = time.perf_counter()
        timings = await asyncio.gather(*(gated(b) for b in bodies))
        wall = time.perf_counter() - start
    return LoadResult(server=server, requests=len(bodies), wall_s=wall, timings=list(timings))
