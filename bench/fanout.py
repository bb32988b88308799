"""n samples of each prompt through ponder vs the same requests with `n`
sent to vLLM's own OpenAI server, side by side: the cost of ponder's layer
over raw fan-out. Through ponder the samples are either OpenAI's `n` choices
of strategy `none` (one engine request with n children, as vLLM serves them),
one `self_consistency` run of n samples (vote, extraction and metadata
included), or one `best_of_n` run (the samples scored by the default PRM)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Literal

import httpx

from ponder.bench.problems import Problem
from ponder.bench.servers import free_port, launched, ponder_command, vllm_command

SERVED_NAME = "smollm2"
Through = Literal["none", "self_consistency", "best_of_n"]


async def fanout_throughput(base_url: str, bodies: Sequence[dict[str, Any]], concurrency: int) -> dict[str, float]:
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(900)) as client:
        async def one(body: dict[str, Any]) -> int:
            async with gate:
                response = await client.post("/v1/chat/completions", json=body)
                response.raise_for_status()
                return int(response.json()["usage"]["completion_tokens"])

        await one(bodies[0])  # warm-up
        start = time.perf_counter()
        tokens = sum(await asyncio.gather(*(one(b) for b in bodies)))
        wall = time.perf_counter() - start
    return {"output_tokens": tokens, "wall_s": round(wall, 2),
            "throughput_tok_s": round(tokens / wall, 2)}


def fanout_bodies(problems: Sequence[Problem], n: int, max_tokens: int, temperature: float,
                  through: Through | None) -> list[dict[str, Any]]:
    """The requests for one server; ``through`` None is vLLM's."""
    bodies = []
    for seed, problem in enumerate(problems):
        body: dict[str, Any] = {
            "model": SERVED_NAME, "messages": [{"role": "user", "content": problem.question}],
            "max_tokens": max_tokens, "temperature": temperature, "seed": seed,
        }
        if through in ("self_consistency", "best_of_n"):
            body["strategy"] = {"name": through, "n": n, "prompt": "direct"}
        else:
            body["n"] = n
            if through is not None:
                body["strategy"] = through
        bodies.append(body)
    return bodies


def compare_fanout(model_dir: str, problems: Sequence[Problem], n: int, max_tokens: int,
                   temperature: float, concurrency: int, kv_cache_gb: float,
                   through: Through = "self_consistency", rounds: int = 1) -> dict[str, Any]:
    """The two servers one after the other, ``rounds`` times (the machine's
    noise shows between rounds); the ratio is of each server's best round."""
    report: dict[str, Any] = {"n": n, "through": through, "problems": len(problems),
                              "concurrency": concurrency, "max_tokens": max_tokens, "runs": []}
    for _ in range(rounds):
        for name in ("vllm", "ponder"):
            port = free_port()
            command = (vllm_command(port, model_dir, SERVED_NAME, kv_cache_gb) if name == "vllm"
                       else ponder_command(port, model_dir, SERVED_NAME, kv_cache_gb))
            bodies = fanout_bodies(problems, n, max_tokens, temperature,
                             None if name == "vllm" else through)
            with launched(name, command, port, SERVED_NAME) as server:
                run = asyncio.run(fanout_throughput(server.base_url, bodies, concurrency))
            report["runs"].append({"server": name, **run})
            print(report["runs"][-1], flush=True)
    for name in ("vllm", "ponder"):
        report[name] = max((r for r in report["runs"] if r["server"] == name),
                           key=lambda r: r["throughput_tok_s"])
    report["ratio"] = round(report["ponder"]["throughput_tok_s"] / report["vllm"]["throughput_tok_s"], 3)
    return report
