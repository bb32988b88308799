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


def _fanout(args: argparse.Namespace) -> None:
    import json

    from ponder.bench.fanout import compare_fanout
    from ponder.bench.problems import generated
    from ponder.server.embedded_model import embedded_model_dir

    report = compare_fanout(
        args.model or str(embedded_model_dir()), generated("one-op", args.problems, seed=1),
        args.n, args.max_tokens, args.temperature, args.concurrency, args.kv_cache_gb,
        args.through, args.rounds,
    )
    output = args.output or RESULTS / "fanout" / f"{args.through}-n{args.n}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2))
    print(f"{args.through} through ponder: {report['ponder']['throughput_tok_s']} tok/s; vLLM "
          f"n={args.n}: {report['vllm']['throughput_tok_s']} tok/s; ratio {report['ratio']}x "
          f"(target >= 0.95); wrote {output}")


def _selects(selector: str, run_name: str) -> bool:
    """`sc-direct@1` must not also pick `sc-direct@16`, so a selector naming an n is exact."""
    return run_name == selector if "@" in selector else run_name.startswith(selector)


def _chosen(runs: list[Any], selectors: str | None) -> list[Any]:
    """The runs ``selectors`` name, in the order they are named (every run
    when none is)."""
    if not selectors:
        return runs
    chosen: list[Any] = []
    for selector in selectors.split(","):
        chosen += [r for r in runs if _selects(selector, r.name) and r not in chosen]
    return chosen


def _accuracy(args: argparse.Namespace) -> None:
    import asyncio
    import contextlib
    import json

    from ponder.bench.accuracy import default_runs, measure, plot, print_table
    from ponder.bench.fanout import compare_fanout
    from ponder.bench.problems import from_jsonl, generated
    from ponder.bench.servers import free_port, launched, ponder_command
    from ponder.server.embedded_model import embedded_model_dir

    problems = (from_jsonl(args.data, args.count) if args.data
                else generated(args.level, args.count, seed=args.seed))
    runs = _chosen(default_runs(), args.runs)
    model_dir = args.model or str(embedded_model_dir())
    with contextlib.ExitStack() as stack:
        if args.url:
            base_url = args.url
        else:
            port = free_port()
            command = ponder_command(port, model_dir, args.served_model_name, args.kv_cache_gb)
            if args.max_samples is not None:
                command += ["--max-samples", str(args.max_samples)]
            base_url = stack.enter_context(
                launched("ponder", command, port, args.served_model_name)).base_url
        results = asyncio.run(measure(base_url, args.served_model_name, runs, problems,
                                      args.concurrency, args.max_tokens, args.api_key))
    summaries = [r.summary() for r in results]
    label = args.data.name if args.data else f"{args.level} x{len(problems)}"
    report: dict[str, Any] = {"problems": label, "max_tokens": args.max_tokens, "runs": summaries}
    if args.throughput:
        report["fanout_throughput"] = compare_fanout(
            model_dir, problems[: args.throughput_problems], 16, args.max_tokens, 0.7,
            args.concurrency, args.kv_cache_gb)
    args.output.mkdir(parents=True, exist_ok=True)
    stem = args.output / f"accuracy-{args.data.stem if args.data else args.level}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2))
    plot(summaries, stem.with_suffix(".png"), f"{label}: accuracy vs generated tokens")
    print_table(summaries)
    if args.throughput:
        fan = report["fanout_throughput"]
        print(f"self_consistency@16 through ponder: {fan['ponder']['throughput_tok_s']} tok/s; "
              f"vLLM n=16: {fan['vllm']['throughput_tok_s']} tok/s; ratio {fan['ratio']}x "
              "(target >= 0.95)")
    print(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.png')}")


def _serving(args: argparse.Namespace, stack: Any, *flags: str) -> tuple[str, int | None]:
    """The server to measure: ``--url``, or one started here (its base URL
    and pid)."""
    from ponder.bench.servers import free_port, launched, ponder_command
    from ponder.server.embedded_model import embedded_model_dir

    if args.url:
        return args.url, getattr(args, "pid", None)
    port = free_port()
    command = ponder_command(port, args.model or str(embedded_model_dir()), args.served_model_name,
                             args.kv_cache_gb) + list(flags)
    server = stack.enter_context(launched("ponder", command, port, args.served_model_name))
    return server.base_url, server.process.pid


def _fairness(args: argparse.Namespace) -> None:
    import asyncio
    import contextlib
    import json

    from ponder.bench.fairness import probe

    flags = [] if args.max_running_samples is None else [
        "--max-running-samples", str(args.max_running_samples)]
    with contextlib.ExitStack() as stack:
        base_url, _ = _serving(args, stack, *flags)
        rounds = []
        for index in range(args.rounds):
            rounds.append(asyncio.run(probe(
                base_url, args.served_model_name, clients=args.clients,
                per_client=args.per_client, heavy_n=args.heavy_n,
                heavy_max_tokens=args.heavy_max_tokens, api_key=args.api_key,
                round_index=index)))
            print(json.dumps(rounds[-1]))
    report = {"max_running_samples": args.max_running_samples or "default", "rounds": rounds,
              "target": "small-request p99 <= 3x alone, heavy requests finish"}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"{'round':>5} {'p50 alone':>10} {'p50 heavy':>10} {'ratio':>6} "
          f"{'p99 alone':>10} {'p99 heavy':>10} {'ratio':>6}  heavy")
    for index, r in enumerate(rounds):
        heavy = ", ".join(f"{h['status']} in {h['seconds']}s" for h in r["heavy"])
        print(f"{index:>5} {r['alone']['p50_s']:>10} {r['with_heavy']['p50_s']:>10} "
              f"{r['p50_ratio']:>6} {r['alone']['p99_s']:>10} {r['with_heavy']['p99_s']:>10} "
              f"{r['p99_ratio']:>6}  {heavy}")
    print(f"wrote {args.output}")


def _soak(args: argparse.Namespace) -> None:
    import asyncio
    import contextlib
    import json

    from ponder.bench.soak import soak

    with contextlib.ExitStack() as stack:
        base_url, pid = _serving(args, stack)
        if pid is None:
            raise SystemExit("ponder bench soak: with --url, give the server's --pid to sample")
        report = asyncio.run(soak(
            base_url, args.served_model_name, pid, minutes=args.minutes, clients=args.clients,
            interval_s=args.interval, api_key=args.api_key,
            on_sample=lambda sample: print(json.dumps(sample), flush=True)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("requests", "statuses", "verdict")}, indent=2))
    print(f"server errors: {len(report['server_errors'])}; wrote {args.output}")


def _scale(args: argparse.Namespace) -> None:
    from ponder.bench.scale import print_report, run_scale
    from ponder.server.embedded_model import embedded_model_dir

    report = run_scale(args.model or str(embedded_model_dir()), args.problems,
                       args.concurrency, args.max_tokens, args.overhead_requests, args.output)
    print_report(report)
    print(f"wrote {args.output}")


def _blocks(args: argparse.Namespace) -> None:
    import json

    from ponder.bench.blocks import compare_block_sizes, print_report
    from ponder.server.embedded_model import embedded_model_dir

    report = compare_block_sizes(args.model or str(embedded_model_dir()),
                                 [int(s) for s in args.sizes.split(",")], args.problems,
                                 args.max_tokens, args.concurrency, args.kv_cache_gb, args.rounds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print_report(report)
    print(f"wrote {args.output}")


def _plot(args: argparse.Namespace) -> None:
    import json

    from ponder.bench.accuracy import plot, print_table

    summaries = [run for path in args.results for run in json.loads(path.read_text())["runs"]
                 if not args.runs or any(run["run"].startswith(p) for p in args.runs.split(","))]
    print_table(summaries)
    plot(summaries, args.output, args.title)
    print(f"wrote {args.output}")


def _server_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="a running ponder server (default: start one)")
    parser.add_argument("--api-key")
    parser.add_argument("--model", help="model directory (default: the embedded model)")
    parser.add_argument("--served-model-name", default="smollm2")
    parser.add_argument("--kv-cache-gb", type=float, default=2.0)


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

    fanout = kinds.add_parser(
        "fanout", help="n samples per prompt through ponder vs vLLM's own n: tokens/s.")
    fanout.add_argument("--model", help="model directory (default: the embedded model)")
    fanout.add_argument("--through", choices=["none", "self_consistency"], default="none",
                        help="ponder's side: OpenAI's n with strategy none, or one "
                        "self_consistency run of n samples")
    fanout.add_argument("--n", type=int, default=8)
    fanout.add_argument("--problems", type=int, default=16)
    fanout.add_argument("--max-tokens", type=int, default=128)
    fanout.add_argument("--temperature", type=float, default=0.7)
    fanout.add_argument("--concurrency", type=int, default=4)
    fanout.add_argument("--kv-cache-gb", type=float, default=2.0)
    fanout.add_argument("--rounds", type=int, default=2,
                        help="alternate the two servers this many times; report each one's best")
    fanout.add_argument("--output", type=Path, help="default: bench/results/fanout/THROUGH-nN.json")
    fanout.set_defaults(handler=_fanout)

    accuracy = kinds.add_parser(
        "accuracy", help="accuracy vs generated tokens for each strategy, with pass@n.")
    accuracy.add_argument("--url", help="a running ponder server (default: start one)")
    accuracy.add_argument("--api-key")
    accuracy.add_argument("--model", help="model directory (default: the embedded model)")
    accuracy.add_argument("--served-model-name", default="smollm2")
    accuracy.add_argument("--level", choices=["one-op", "two-op"], default="one-op")
    accuracy.add_argument("--data", type=Path, help="JSONL of {question, answer} (GSM8K too)")
    accuracy.add_argument("--count", type=int, default=300)
    accuracy.add_argument("--seed", type=int, default=0)
    accuracy.add_argument("--runs", help="comma-separated run names (sc-direct@4) or prefixes "
                          "(sc-cot, bon-), run in the order named")
    accuracy.add_argument("--concurrency", type=int, default=4)
    accuracy.add_argument("--max-tokens", type=int, default=256)
    accuracy.add_argument("--kv-cache-gb", type=float, default=4.0)
    accuracy.add_argument("--max-samples", type=int,
                          help="the started server's --max-samples (searches at 32 need 320)")
    accuracy.add_argument("--throughput", action=argparse.BooleanOptionalAction, default=True,
                          help="also compare self_consistency@16 with vLLM's own n=16")
    accuracy.add_argument("--throughput-problems", type=int, default=32)
    accuracy.add_argument("--output", type=Path, default=RESULTS)
    accuracy.set_defaults(handler=_accuracy)

    fairness = kinds.add_parser(
        "fairness", help="small requests alone vs beside two self_consistency n=64: p50/p99.")
    _server_options(fairness)
    fairness.add_argument("--max-running-samples", type=int,
                          help="the started server's --max-running-samples (default: its own)")
    fairness.add_argument("--rounds", type=int, default=3)
    fairness.add_argument("--clients", type=int, default=8)
    fairness.add_argument("--per-client", type=int, default=8)
    fairness.add_argument("--heavy-n", type=int, default=64)
    fairness.add_argument("--heavy-max-tokens", type=int, default=192)
    fairness.add_argument("--output", type=Path, default=RESULTS / "fairness.json")
    fairness.set_defaults(handler=_fairness)

    soak = kinds.add_parser(
        "soak", help="mixed traffic for a long time; process-tree RSS, fds, asyncio tasks.")
    _server_options(soak)
    soak.add_argument("--pid", type=int, help="with --url: the server's pid, to sample")
    soak.add_argument("--minutes", type=float, default=30)
    soak.add_argument("--clients", type=int, default=6)
    soak.add_argument("--interval", type=float, default=30, help="seconds between samples")
    soak.add_argument("--output", type=Path, default=RESULTS / "soak.json")
    soak.set_defaults(handler=_soak)

    scale = kinds.add_parser(
        "scale", help="embedded vs ponder over one vLLM server vs two behind vllm-router: "
        "tokens/s, latency, prefix-cache hit rates (run it under engine-slot --both).")
    scale.add_argument("--model", help="model directory (default: the embedded model)")
    scale.add_argument("--problems", type=int, default=12)
    scale.add_argument("--concurrency", type=int, default=4)
    scale.add_argument("--max-tokens", type=int, default=64)
    scale.add_argument("--overhead-requests", type=int, default=30)
    scale.add_argument("--output", type=Path, default=RESULTS / "scale" / "scale.json")
    scale.set_defaults(handler=_scale)

    replot = kinds.add_parser(
        "plot", help="one table and accuracy-vs-tokens plot from several `bench accuracy` "
        "result files (runs measured apart on the same problems).")
    replot.add_argument("results", type=Path, nargs="+")
    replot.add_argument("--runs", help="comma-separated run name prefixes to keep")
    replot.add_argument("--title", default="accuracy vs generated tokens")
    replot.add_argument("--output", type=Path, required=True)
    replot.set_defaults(handler=_plot)

    blocks = kinds.add_parser(
        "blocks", help="KV block sizes side by side: whole-sample tokens/s and search's "
        "prefix-cache hits (one engine at a time; give it a quiet machine).")
    blocks.add_argument("--model", help="model directory (default: the embedded model)")
    blocks.add_argument("--sizes", default="32,128", help="comma-separated block sizes")
    blocks.add_argument("--problems", type=int, default=8)
    blocks.add_argument("--max-tokens", type=int, default=160)
    blocks.add_argument("--concurrency", type=int, default=4)
    blocks.add_argument("--kv-cache-gb", type=float, default=4.0)
    blocks.add_argument("--rounds", type=int, default=2)
    blocks.add_argument("--output", type=Path, default=RESULTS / "blocks.json")
    blocks.set_defaults(handler=_blocks)
