"""The KV cache block size on a CPU: whole-sample throughput and search's
prefix-cache hit rate at each size, one engine at a time, alternating.

A block is the prefix cache's unit: only whole blocks are shared. A search
sends each expansion as the prompt plus the steps so far, and its lines are
short, so a large block leaves more of each line uncached; but smaller blocks
mean more block-table work per token for every request. Which wins on this
machine's whole samples, and by how much search gains, is measured here side
by side, so the default is chosen from numbers rather than guessed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ponder.bench.load import run_load
from ponder.bench.problems import generated
from ponder.bench.scale import _prefix_cache
from ponder.bench.servers import free_port, launched, ponder_command

SERVED_NAME = "smollm2"
WORKLOADS: dict[str, dict[str, Any]] = {
    "whole samples (self_consistency@16)": {"name": "self_consistency", "n": 16,
                                             "prompt": "direct"},
    "search (beam_search@16, 4 x 4)": {"name": "beam_search", "beam_width": 4, "expand": 4,
                                       "prm": "step-checker"},
}


def _bodies(strategy: dict[str, Any], problems: int, max_tokens: int, seed: int
            ) -> list[dict[str, Any]]:
    return [
        {"model": SERVED_NAME, "messages": [{"role": "user", "content": p.question}],
         "max_tokens": max_tokens, "temperature": 0.7, "seed": index, "strategy": strategy}
        for index, p in enumerate(generated("two-op", problems, seed=seed))
    ]


def _measure_size(model_dir: str, block_size: int, problems: int, max_tokens: int,
                  concurrency: int, kv_cache_gb: float) -> list[dict[str, Any]]:
    port = free_port()
    command = ponder_command(port, model_dir, SERVED_NAME, kv_cache_gb) + [
        "--block-size", str(block_size)]
    rows = []
    with launched(f"ponder-block{block_size}", command, port, SERVED_NAME) as server:
        for workload, strategy in WORKLOADS.items():
            # Warm-up on other problems, so neither size pays the first compile.
            asyncio.run(run_load(server.base_url, "warm-up",
                                 _bodies(strategy, 2, max_tokens, seed=99), 2))
            before = _prefix_cache(server)
            result = asyncio.run(run_load(server.base_url, f"block {block_size}",
                                          _bodies(strategy, problems, max_tokens, seed=5),
                                          concurrency))
            after = _prefix_cache(server)
            queries, hits = after[0] - before[0], after[1] - before[1]
            rows.append({"block_size": block_size, "workload": workload, **result.summary(),
                         "prefix_cache_hit_rate": round(hits / queries, 3) if queries else None})
            print(rows[-1], flush=True)
    return rows


def compare_block_sizes(model_dir: str, sizes: Sequence[int], problems: int, max_tokens: int,
                        concurrency: int, kv_cache_gb: float, rounds: int) -> dict[str, Any]:
    """Every size ``rounds`` times, alternating; each size's best round per
    workload is the one compared (the noise of a shared machine shows as the
    spread between rounds, which is kept)."""
    runs: list[dict[str, Any]] = []
    for _ in range(rounds):
        for size in sizes:
            runs += _measure_size(model_dir, size, problems, max_tokens, concurrency, kv_cache_gb)
    best: dict[str, dict[int, dict[str, Any]]] = {}
    for row in runs:
        kept = best.setdefault(row["workload"], {}).get(row["block_size"])
        if kept is None or row["throughput_tok_s"] > kept["throughput_tok_s"]:
            best[row["workload"]][row["block_size"]] = row
    return {"sizes": list(sizes), "problems": problems, "max_tokens": max_tokens,
            "concurrency": concurrency, "runs": runs,
            "best": {w: list(by_size.values()) for w, by_size in best.items()}}


def print_report(report: dict[str, Any]) -> None:
    print("| workload | block | tokens/s (best round) | prefix-cache hits |")
    print("|---|---|---|---|")
    for workload, rows in report["best"].items():
        for row in rows:
            print(f"| {workload} | {row['block_size']} | {row['throughput_tok_s']} | "
                  f"{row['prefix_cache_hit_rate']} |")
