"""``ponder bench ...``: benchmarks that compare side by side in one run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

RESULTS = Path("bench/results")


def _overhead(args: argparse.Namespace) -> None:
    from ponder.bench.overhead import print_report, run_overhead
    from ponder.server.embedded_model import embedded_model_dir

    model_dir = args.model or str(embedded_model_dir())
    report = run_overhead(model_dir, args.requests, args.concurrency, args.max_tokens,
                          args.kv_cache_gb, args.rounds, args.output)
    print_report(report)


def add_bench_commands(commands: Any) -> None:
    bench = commands.add_parser("bench", help="Run a benchmark (see `ponder bench -h`).")
    kinds = bench.add_subparsers(dest="bench", required=True)

    overhead = kinds.add_parser(
        "overhead", help="ponder vs vLLM's own OpenAI server: throughput, latency, TTFT.")
    overhead.add_argument("--model", help="model directory (default: the embedded model)")
    overhead.add_argument("--requests", type=int, default=64)
    overhead.add_argument("--concurrency", type=int, default=8)
    overhead.add_argument("--max-tokens", type=int, default=128)
    overhead.add_argument("--kv-cache-gb", type=float, default=2.0)
    overhead.add_argument("--rounds", type=int, default=1,
                          help="alternate the two servers this many times; report each one's best")
    overhead.add_argument("--output", type=Path, default=RESULTS / "overhead.json")
    overhead.set_defaults(handler=_overhead)
