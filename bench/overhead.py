"""What ponder costs over vLLM's own OpenAI server, measured side by side.

Both servers run the same model with the same engine settings, one after
the other, and get the same requests (strategy ``none``, greedy, so both
generate the same tokens). The numbers that matter are the ratios.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ponder.bench.load import LoadResult, run_load
from ponder.bench.problems import generated
from ponder.bench.provenance import write_result
from ponder.bench.servers import free_port, launched, ponder_command, vllm_command

SERVED_NAME = "smollm2"


def _bodies(count: int, max_tokens: int, strategy: str | None) -> list[dict[str, Any]]:
    questions = [p.question for p in generated("one-op", count, seed=1)]
    bodies: list[dict[str, Any]] = [
        {"model": SERVED_NAME, "messages": [{"role": "user", "content": q}],
         "max_tokens": max_tokens, "temperature": 0}
        for q in questions
    ]
    if strategy:
        for body in bodies:
            body["strategy"] = strategy
    return bodies


def _measure(name: str, command: list[str], port: int, bodies: list[dict[str, Any]],
             concurrency: int, warmup: int) -> LoadResult:
    with launched(name, command, port, SERVED_NAME) as server:
        asyncio.run(run_load(server.base_url, name, bodies[:warmup], concurrency))
        return asyncio.run(run_load(server.base_url, name, bodies, concurrency))


def run_overhead(model_dir: str, requests: int, concurrency: int, max_tokens: int,
                 kv_cache_gb: float, rounds: int, output: Path) -> dict[str, Any]:
    results: list[LoadResult] = []
    for _ in range(rounds):
        for name in ("vllm", "ponder"):
            port = free_port()
            if name == "vllm":
                command = vllm_command(port, model_dir, SERVED_NAME, kv_cache_gb)
                bodies = _bodies(requests, max_tokens, None)
            else:
                command = ponder_command(port, model_dir, SERVED_NAME, kv_cache_gb)
                bodies = _bodies(requests, max_tokens, "none")
            results.append(_measure(name, command, port, bodies, concurrency, warmup=concurrency))
            print(json.dumps(results[-1].summary()))
    report = _report(results)
    write_result(output, report)
    return report


def _best(results: list[LoadResult], name: str) -> LoadResult:
    """The round with the highest throughput: the least disturbed by the noise
    of a shared machine."""
    return max((r for r in results if r.server == name), key=lambda r: r.throughput)


def _report(results: list[LoadResult]) -> dict[str, Any]:
    vllm, ponder = _best(results, "vllm"), _best(results, "ponder")
    return {
        "runs": [r.summary() for r in results],
        "vllm": vllm.summary(),
        "ponder": ponder.summary(),
        "throughput_ratio": round(ponder.throughput / vllm.throughput, 3),
        "ttft_p50_ratio": round(ponder.percentile("ttft_s", 50) / vllm.percentile("ttft_s", 50), 3),
        "latency_p50_ratio": round(
            ponder.percentile("latency_s", 50) / vllm.percentile("latency_s", 50), 3),
    }


def print_report(report: dict[str, Any]) -> None:
    columns = ("throughput_tok_s", "ttft_p50_s", "ttft_p95_s", "latency_p50_s", "latency_p95_s")
    print(f"{'server':8}" + "".join(f"{c:>18}" for c in columns))
    for name in ("vllm", "ponder"):
        print(f"{name:8}" + "".join(f"{report[name][c]:>18}" for c in columns))
    print(f"ponder/vllm throughput {report['throughput_ratio']}x (target >= 1.0), "
          f"ttft p50 {report['ttft_p50_ratio']}x (target <= 1.1), "
          f"latency p50 {report['latency_p50_ratio']}x")
