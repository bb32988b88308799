"""``ponder bench scale``: the same workloads on the embedded engine, on
ponder over one remote vLLM server, and on ponder over two replicas behind
``vllm-router`` (round-robin, cache-aware, and consistent hashing on the
ponder request id each call carries as ``X-Session-Id``), side by side in one run.

Workloads: ``self_consistency@8`` (one fanned-out call per request) and
``beam_search`` (step-level search: every round continues each kept line by
its token ids, so prefix-cache hits depend on where the calls land).
Reported per configuration and workload: generated tokens per second, wall
time, latency p50/p95, and each engine's prefix-cache hit rate over the run
(``vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total`` from its
``/metrics``; every engine's prefix cache is emptied before each run).
Then the remote path's per-request overhead: sequential one-token requests,
remote against embedded.

It needs two cores: run it as ``taskset -c 0,1 ponder bench scale`` or give
the engines' cores in ``PONDER_FLEET_CORES`` (``bench/fleet.py``). Every
engine gets one of them (the embedded one and a single remote server the
first; two replicas one each) and KV blocks of 32 tokens, so that the step
search's short shared prefixes fill whole blocks. On a machine of 2 cores
two replicas cannot show a throughput gain over one: ponder, the router and
both engines share the same two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from ponder.bench.fleet import (
    SERVED_NAME,
    fleet_cores,
    remote_ponder,
    replicas,
    routed,
)
from ponder.bench.load import run_load
from ponder.bench.problems import generated
from ponder.bench.provenance import write_result
from ponder.bench.servers import RunningServer, free_port, launched, ponder_command

BLOCK_SIZE = 32
POLICIES = ("round_robin", "cache_aware", "consistent_hash")
WORKLOADS: dict[str, dict[str, Any]] = {
    "self_consistency@8": {"name": "self_consistency", "n": 8, "prompt": "direct"},
    "beam_search": {"name": "beam_search", "beam_width": 2, "expand": 2, "max_steps": 4,
                    "step_delimiter": "\n", "prm": "step-checker"},
}
DEV_MODE = {"VLLM_SERVER_DEV_MODE": "1"}
"""vLLM's /reset_prefix_cache (a dev endpoint): every run starts cold."""


def _bodies(workload: str, problems: int, max_tokens: int, seed: int = 7) -> list[dict[str, Any]]:
    return [
        {"model": SERVED_NAME, "messages": [{"role": "user", "content": p.question}],
         "max_tokens": max_tokens, "temperature": 0.7, "seed": index,
         "strategy": WORKLOADS[workload]}
        for index, p in enumerate(generated("one-op", problems, seed=seed))
    ]


def _prefix_cache(engine: RunningServer) -> tuple[float, float]:
    """(queries, hits) in tokens, from the engine's own counters."""
    totals = {"vllm:prefix_cache_queries_total": 0.0, "vllm:prefix_cache_hits_total": 0.0}
    for line in httpx.get(f"{engine.base_url}/metrics", timeout=30).text.splitlines():
        name = line.split("{", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals["vllm:prefix_cache_queries_total"], totals["vllm:prefix_cache_hits_total"]


def _reset(engines: Sequence[RunningServer]) -> None:
    for engine in engines:
        if engine.name.startswith("vllm"):
            httpx.post(f"{engine.base_url}/reset_prefix_cache", timeout=30).raise_for_status()


def _measure(config: str, ponder: RunningServer, engines: Sequence[RunningServer],
             problems: int, concurrency: int, max_tokens: int) -> list[dict[str, Any]]:
    rows = []
    for workload in WORKLOADS:
        bodies = _bodies(workload, problems, max_tokens)
        # Warm on other problems (the embedded engine's cache cannot be reset).
        asyncio.run(run_load(ponder.base_url, config, _bodies(workload, 2, max_tokens, 8), 2))
        _reset(engines)
        before = [_prefix_cache(e) for e in engines]
        result = asyncio.run(run_load(ponder.base_url, config, bodies, concurrency))
        after = [_prefix_cache(e) for e in engines]
        hit_rates = [
            {"engine": e.name, "queries": int(a[0] - b[0]), "hits": int(a[1] - b[1]),
             "hit_rate": round((a[1] - b[1]) / (a[0] - b[0]), 3) if a[0] > b[0] else None}
            for e, b, a in zip(engines, before, after)
        ]
        rows.append({"config": config, "workload": workload, **result.summary(),
                     "prefix_cache": hit_rates})
        print(json.dumps(rows[-1]), flush=True)
    return rows


async def _one_token_latencies(base_url: str, requests: int) -> list[float]:
    """Sequential requests of one generated token: what a call costs besides
    generating."""
    body = {"model": SERVED_NAME, "messages": [{"role": "user", "content": "Say hi."}],
            "max_tokens": 1, "temperature": 0}
    latencies = []
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        for _ in range(requests + 3):
            start = time.perf_counter()
            (await client.post("/v1/chat/completions", json=body)).raise_for_status()
            latencies.append(time.perf_counter() - start)
    return latencies[3:]  # the first few warm the path up


def _latency_summary(latencies: list[float]) -> dict[str, float]:
    quartiles = statistics.quantiles(latencies, n=4)
    return {"median_ms": round(statistics.median(latencies) * 1000, 2),
            "q1_ms": round(quartiles[0] * 1000, 2), "q3_ms": round(quartiles[2] * 1000, 2)}


@contextlib.contextmanager
def _embedded(model_dir: str, core: str) -> Iterator[RunningServer]:
    port = free_port()
    command = [*ponder_command(port, model_dir, SERVED_NAME, 1.0),
               "--block-size", str(BLOCK_SIZE), "--max-running-samples", "32"]
    with launched("embedded", command, port, SERVED_NAME,
                  env={"VLLM_CPU_OMP_THREADS_BIND": core}) as server:
        yield server


def run_scale(model_dir: str, problems: int, concurrency: int, max_tokens: int,
              overhead_requests: int, output: Path) -> dict[str, Any]:
    cores = fleet_cores()
    per_replica = [cores[0], cores[-1]]
    rows: list[dict[str, Any]] = []
    overhead: dict[str, Any] = {}
    with _embedded(model_dir, cores[0]) as embedded:
        rows += _measure("embedded", embedded, [embedded], problems, concurrency, max_tokens)
        here = asyncio.run(_one_token_latencies(embedded.base_url, overhead_requests))
    with replicas(model_dir, per_replica, block_size=BLOCK_SIZE, env=DEV_MODE) as running:
        with remote_ponder(model_dir, running[0].base_url,
                           ["--max-running-samples", "32"]) as ponder:
            rows += _measure("remote-1", ponder, running[:1], problems, concurrency, max_tokens)
            there = asyncio.run(_one_token_latencies(ponder.base_url, overhead_requests))
        for policy in POLICIES:
            with routed(running, policy) as router, remote_ponder(
                model_dir, router.base_url, ["--max-running-samples", "64"]
            ) as ponder:
                rows += _measure(f"remote-2-{policy}", ponder, running, problems,
                                 concurrency, max_tokens)
    overhead = {"embedded": _latency_summary(here), "remote-1": _latency_summary(there),
                "requests": overhead_requests,
                "added_median_ms": round((statistics.median(there) - statistics.median(here))
                                         * 1000, 2)}
    report = {"problems": problems, "concurrency": concurrency, "max_tokens": max_tokens,
              "block_size": BLOCK_SIZE, "cores": cores, "runs": rows,
              "one_token_overhead": overhead, "ratios": _ratios(rows)}
    write_result(output, report)
    return report


def _ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Each configuration's tokens/s over the embedded engine's, per workload."""
    base = {r["workload"]: r["throughput_tok_s"] for r in rows if r["config"] == "embedded"}
    return {f"{r['config']}/{r['workload']}": round(r["throughput_tok_s"] / base[r["workload"]], 3)
            for r in rows if r["config"] != "embedded"}


def print_report(report: dict[str, Any]) -> None:
    print(f"\n{'config':<28}{'workload':<20}{'tok/s':>8}{'wall s':>8}{'p50 s':>8}{'p95 s':>8}"
          "  prefix-cache hit rate per engine")
    for row in report["runs"]:
        rates = ", ".join(f"{p['engine']}: {p['hit_rate']} ({p['hits']}/{p['queries']})"
                          for p in row["prefix_cache"])
        print(f"{row['config']:<28}{row['workload']:<20}{row['throughput_tok_s']:>8}"
              f"{row['wall_s']:>8}{row['latency_p50_s']:>8}{row['latency_p95_s']:>8}  {rates}")
    print("\ntokens/s over embedded:", json.dumps(report["ratios"]))
    print("one-token request latency:", json.dumps(report["one_token_overhead"]))
