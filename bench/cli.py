"""``ponder bench ...``: benchmarks that compare side by side in one run."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path("bench/results")


def _recorded(handler: Callable[[argparse.Namespace], None]) -> Callable[[argparse.Namespace], None]:
    """``handler``, with the run's provenance taken as it starts."""
    def run(args: argparse.Namespace) -> None:
        from ponder.bench.provenance import provenance

        provenance()
        handler(args)
    return run


def _overhead(args: argparse.Namespace) -> None:
    from ponder.bench.overhead import print_report, run_overhead
    from ponder.server.embedded_model import embedded_model_dir

    model_dir = args.model or str(embedded_model_dir())
    report = run_overhead(model_dir, args.problems, args.concurrency, args.max_tokens,
                          args.kv_cache_gb, args.rounds, args.output)
    print_report(report)


def _fanout(args: argparse.Namespace) -> None:
    from ponder.bench.fanout import compare_fanout
    from ponder.bench.problems import generated
    from ponder.bench.provenance import write_result
    from ponder.server.embedded_model import embedded_model_dir

    report = compare_fanout(
        args.model or str(embedded_model_dir()), generated("one-op", args.problems, seed=1),
        args.n, args.max_tokens, args.temperature, args.concurrency, args.kv_cache_gb,
        args.through, args.rounds,
    )
    output = args.output or RESULTS / "fanout" / f"{args.through}-n{args.n}.json"
    write_result(output, report)
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


def _fitting(runs: list[Any], cap: int, named: bool) -> list[Any]:
    """The runs a server that allows ``cap`` samples a run can serve. Runs
    named on the command line must all fit; of the default grid, those that
    do not are left out, with a note."""
    too_big = [r for r in runs if r.max_samples > cap]
    if too_big and named:
        need = max(r.max_samples for r in too_big)
        raise SystemExit(
            f"ponder bench accuracy: {', '.join(r.name for r in too_big)} may draw up to {need} "
            f"samples a run; the server allows {cap}: pass --max-samples {need} "
            "(or start the --url server with it)")
    if too_big:
        print(f"leaving out {len(too_big)} run(s) the server's --max-samples {cap} refuses: "
              f"{', '.join(r.name for r in too_big)}")
    return [r for r in runs if r.max_samples <= cap]


def _accuracy(args: argparse.Namespace) -> None:
    import asyncio
    import contextlib

    from ponder.bench.accuracy import default_runs, measure, sample_cap
    from ponder.bench.fanout import compare_fanout
    from ponder.bench.problems import from_jsonl, generated
    from ponder.bench.servers import free_port, launched, ponder_command
    from ponder.server.config import Settings
    from ponder.server.embedded_model import embedded_model_dir

    problems = (from_jsonl(args.data, args.problems) if args.data
                else generated(args.level, args.problems, seed=args.seed))
    model_dir = args.model or str(embedded_model_dir())
    if args.url:
        cap = sample_cap(args.url, args.api_key)
    else:
        cap = args.max_samples or Settings.model_fields["max_samples"].default
    runs = _fitting(_chosen(default_runs(), args.runs), cap, named=bool(args.runs))
    with contextlib.ExitStack() as stack:
        base_url = args.url
        if not base_url:
            port = free_port()
            command = ponder_command(port, model_dir, args.served_model_name, args.kv_cache_gb)
            command += ["--max-samples", str(cap)]
            base_url = stack.enter_context(
                launched("ponder", command, port, args.served_model_name)).base_url
        results = asyncio.run(measure(base_url, args.served_model_name, runs, problems,
                                      args.concurrency, args.max_tokens, args.api_key))
    summaries = [r.summary() for r in results]
    label = args.data.name if args.data else f"{args.level} x{len(problems)}"
    report: dict[str, Any] = {"problems": label, "max_tokens": args.max_tokens, "runs": summaries}
    if args.paired:
        report["paired"] = _pairs(summaries, args.paired)
    if args.throughput:
        report["fanout_throughput"] = compare_fanout(
            model_dir, problems[: args.throughput_problems], 16, args.max_tokens, 0.7,
            args.concurrency, args.kv_cache_gb)
    output = _result_file(args.output, RESULTS,
                          f"accuracy-{args.data.stem if args.data else args.level}.json")
    _write_report(report, output, f"{label}: accuracy vs generated tokens")
    if args.throughput:
        fan = report["fanout_throughput"]
        print(f"self_consistency@16 through ponder: {fan['ponder']['throughput_tok_s']} tok/s; "
              f"vLLM n=16: {fan['vllm']['throughput_tok_s']} tok/s; ratio {fan['ratio']}x "
              "(target >= 0.95)")


def _pairs(summaries: list[dict[str, Any]], spec: str) -> list[dict[str, Any]]:
    """``NEW:OLD,...`` as paired comparisons of the runs so named."""
    from ponder.bench.accuracy import paired

    by_name = {s["run"]: s for s in summaries}
    pairs = [pair.split(":") for pair in spec.split(",")]
    missing = [name for pair in pairs for name in pair if name not in by_name]
    if missing:
        raise SystemExit(f"--paired names runs that did not run: {', '.join(missing)}")
    return [paired(by_name[new], by_name[old]) for new, old in pairs]


def _peers(args: argparse.Namespace) -> None:
    from ponder.bench.accuracy import SAMPLE_TEMPERATURE, default_runs
    from ponder.bench.peers import compare_peers
    from ponder.bench.problems import generated
    from ponder.server.embedded_model import embedded_model_dir

    problems = generated(args.level, args.problems, seed=args.seed)
    summaries = compare_peers(
        args.model or str(embedded_model_dir()), args.served_model_name, problems, args.n,
        _chosen(default_runs(), args.runs), args.max_tokens, SAMPLE_TEMPERATURE,
        args.concurrency, args.kv_cache_gb)
    report: dict[str, Any] = {"problems": f"{args.level} x{len(problems)} (seed {args.seed})",
                              "max_tokens": args.max_tokens, "runs": summaries}
    if args.paired:
        report["paired"] = _pairs(summaries, args.paired)
    output = _result_file(args.output, RESULTS / "peers", f"peers-{args.level}.json")
    _write_report(report, output, f"{report['problems']}: ponder vs its-hub")


def _result_file(output: Path | None, folder: Path, name: str) -> Path:
    """``--output`` as given; one without a suffix is a folder, which gets
    the file by its usual name (``--output bench/results/cheaper/short``)."""
    if output is None:
        return folder / name
    return output / name if not output.suffix else output


def _write_report(report: dict[str, Any], output: Path, title: str) -> None:
    """The report as JSON with its provenance, its plot beside it, and its
    tables printed."""
    from ponder.bench.accuracy import plot, print_paired, print_table
    from ponder.bench.provenance import write_result

    write_result(output, report)
    plot(report["runs"], output.with_suffix(".png"), title)
    print_table(report["runs"])
    if "paired" in report:
        print_paired(report["paired"])
    print(f"wrote {output} and {output.with_suffix('.png')}")


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
    from ponder.bench.provenance import write_result

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
    write_result(args.output, report)
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

    from ponder.bench.provenance import write_result
    from ponder.bench.soak import soak

    with contextlib.ExitStack() as stack:
        base_url, pid = _serving(args, stack)
        if pid is None:
            raise SystemExit("ponder bench soak: with --url, give the server's --pid to sample")
        report = asyncio.run(soak(
            base_url, args.served_model_name, pid, minutes=args.minutes, clients=args.clients,
            interval_s=args.interval, api_key=args.api_key,
            on_sample=lambda sample: print(json.dumps(sample), flush=True)))
    write_result(args.output, report)
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
    from ponder.bench.blocks import compare_block_sizes, print_report
    from ponder.bench.provenance import write_result
    from ponder.server.embedded_model import embedded_model_dir

    report = compare_block_sizes(args.model or str(embedded_model_dir()),
                                 [int(s) for s in args.sizes.split(",")], args.problems,
                                 args.max_tokens, args.concurrency, args.kv_cache_gb, args.rounds)
    write_result(args.output, report)
    print_report(report)
    print(f"wrote {args.output}")


def _gpu(args: argparse.Namespace) -> None:
    from ponder.bench.gpu import main

    raise SystemExit(main(args.model, args.gpu_memory_utilization, args.output))


def _sizing(args: argparse.Namespace) -> None:
    from ponder.bench.sizing import write

    print(write(args.output))
    print(f"wrote {args.output} (computed from KV-cache arithmetic, not measured)")


def _plot(args: argparse.Namespace) -> None:
    import json

    from ponder.bench.accuracy import plot, print_table

    summaries = [run for path in args.results for run in json.loads(path.read_text())["runs"]
                 if not args.runs or any(run["run"].startswith(p) for p in args.runs.split(","))]
    print_table(summaries)
    plot(summaries, args.output, args.title)
    print(f"wrote {args.output}")


def _engine_options(parser: argparse.ArgumentParser) -> None:
    """The model and engine of the servers a benchmark starts, named and
    defaulted as `ponder serve` names them."""
    from ponder.server.hardware import CPU_KV_CACHE_GB

    parser.add_argument("--model", help="model directory (default: the embedded model)")
    parser.add_argument("--kv-cache-gb", type=float,
                        default=CPU_KV_CACHE_GB,
                        help="KV cache of each engine started, in GiB (default: %(default)s, "
                        "as ponder serve on a CPU)")


def _server_options(parser: argparse.ArgumentParser) -> None:
    """A running server to measure, or the one the benchmark starts."""
    from ponder.server.embedded_model import EMBEDDED_SERVED_NAME

    parser.add_argument("--url", help="a running ponder server (default: start one)")
    parser.add_argument("--api-key", help="the --url server's key")
    parser.add_argument("--served-model-name", default=EMBEDDED_SERVED_NAME,
                        help="the model name to send (default: %(default)s)")
    _engine_options(parser)


def _problems_option(parser: argparse.ArgumentParser, default: int, *aliases: str) -> None:
    parser.add_argument("--problems", type=int, default=default,
                        help="how many problems (default: %(default)s)")
    for alias in aliases:  # earlier spellings still parse, unlisted
        parser.add_argument(alias, dest="problems", type=int, help=argparse.SUPPRESS)


def _output_option(parser: argparse.ArgumentParser, default: Path | None, what: str) -> None:
    parser.add_argument("--output", type=Path, default=default,
                        help=f"the JSON result file (default: {default or what})")


def add_bench_commands(commands: Any) -> None:
    from ponder.bench.prune_signal import add_prune_signal_command
    from ponder.bench.report import add_report_command
    from ponder.bench.sizing import SIZING

    bench = commands.add_parser("bench", help="Run a benchmark (see `ponder bench -h`).")
    kinds = bench.add_subparsers(dest="bench", required=True)

    overhead = kinds.add_parser(
        "overhead", help="ponder vs vLLM's own OpenAI server: throughput, latency, TTFT.")
    _engine_options(overhead)
    _problems_option(overhead, 64)
    overhead.add_argument("--concurrency", type=int, default=8)
    overhead.add_argument("--max-tokens", type=int, default=128)
    overhead.add_argument("--rounds", type=int, default=1,
                          help="alternate the two servers this many times; report each one's best")
    _output_option(overhead, RESULTS / "overhead.json", "")
    overhead.set_defaults(handler=_recorded(_overhead))

    fanout = kinds.add_parser(
        "fanout", help="n samples per prompt through ponder vs vLLM's own n: tokens/s.")
    _engine_options(fanout)
    fanout.add_argument("--through", choices=["none", "self_consistency", "best_of_n"],
                        default="none",
                        help="ponder's side: OpenAI's n with strategy none, or one "
                        "self_consistency or best_of_n run of n samples")
    fanout.add_argument("--n", type=int, default=8)
    _problems_option(fanout, 16)
    fanout.add_argument("--max-tokens", type=int, default=128)
    fanout.add_argument("--temperature", type=float, default=0.7)
    fanout.add_argument("--concurrency", type=int, default=4)
    fanout.add_argument("--rounds", type=int, default=2,
                        help="alternate the two servers this many times; report each one's best")
    _output_option(fanout, None, "bench/results/fanout/THROUGH-nN.json")
    fanout.set_defaults(handler=_recorded(_fanout))

    accuracy = kinds.add_parser(
        "accuracy", help="accuracy vs generated tokens for each strategy, with pass@n.")
    _server_options(accuracy)
    accuracy.add_argument("--level", choices=["one-op", "two-op"], default="one-op")
    accuracy.add_argument("--data", type=Path, help="JSONL of {question, answer} (GSM8K too)")
    _problems_option(accuracy, 300, "--count")
    accuracy.add_argument("--seed", type=int, default=0, help="of the generated problems")
    accuracy.add_argument("--runs", help="comma-separated run names (sc-direct@4) or prefixes "
                          "(sc-cot, bon-), run in the order named (default: every run that "
                          "fits the server's --max-samples)")
    accuracy.add_argument("--concurrency", type=int, default=4)
    accuracy.add_argument("--max-tokens", type=int, default=256)
    accuracy.add_argument("--max-samples", type=int,
                          help="the started server's --max-samples (default: ponder serve's; "
                          "searches at 32 need 320)")
    accuracy.add_argument("--throughput", action=argparse.BooleanOptionalAction, default=True,
                          help="also compare self_consistency@16 with vLLM's own n=16")
    accuracy.add_argument("--throughput-problems", type=int, default=32)
    accuracy.add_argument("--paired", help="comma-separated NEW:OLD run pairs to compare "
                          "question by question (difference with its 95%% interval, cost ratios)")
    _output_option(accuracy, None, "bench/results/accuracy-LEVEL.json; the plot beside it")
    accuracy.set_defaults(handler=_recorded(_accuracy))

    peers = kinds.add_parser(
        "peers", help="its-hub's self-consistency over vLLM's own server vs ponder's "
        "strategies, same questions, same dtype, one server at a time (needs its_hub).")
    _engine_options(peers)
    peers.add_argument("--served-model-name", default="smollm2")
    peers.add_argument("--level", choices=["one-op", "two-op"], default="one-op")
    _problems_option(peers, 120, "--count")
    peers.add_argument("--seed", type=int, default=0, help="of the generated problems")
    peers.add_argument("--n", type=int, default=8, help="its-hub's budget (samples per question)")
    peers.add_argument("--runs", required=True, help="ponder's runs, as for `bench accuracy`")
    peers.add_argument("--paired", help="NEW:OLD run pairs (its-hub's run is its-hub-sc@N)")
    peers.add_argument("--concurrency", type=int, default=4)
    peers.add_argument("--max-tokens", type=int, default=256)
    _output_option(peers, None, "bench/results/peers/peers-LEVEL.json; the plot beside it")
    peers.set_defaults(handler=_recorded(_peers))

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
    _output_option(fairness, RESULTS / "fairness.json", "")
    fairness.set_defaults(handler=_recorded(_fairness))

    soak = kinds.add_parser(
        "soak", help="mixed traffic for a long time; process-tree RSS, fds, asyncio tasks.")
    _server_options(soak)
    soak.add_argument("--pid", type=int, help="with --url: the server's pid, to sample")
    soak.add_argument("--minutes", type=float, default=30)
    soak.add_argument("--clients", type=int, default=6)
    soak.add_argument("--interval", type=float, default=30, help="seconds between samples")
    _output_option(soak, RESULTS / "soak" / "embedded.json", "")
    soak.set_defaults(handler=_recorded(_soak))

    scale = kinds.add_parser(
        "scale", help="embedded vs ponder over one vLLM server vs two behind vllm-router: "
        "tokens/s, latency, prefix-cache hit rates. Needs two cores: run it under "
        "`taskset -c 0,1`, or name the engines' cores in PONDER_FLEET_CORES.")
    scale.add_argument("--model", help="model directory (default: the embedded model)")
    _problems_option(scale, 12)
    scale.add_argument("--concurrency", type=int, default=4)
    scale.add_argument("--max-tokens", type=int, default=64)
    scale.add_argument("--overhead-requests", type=int, default=30)
    _output_option(scale, RESULTS / "scale" / "scale.json", "")
    scale.set_defaults(handler=_recorded(_scale))

    gpu = kinds.add_parser(
        "gpu", help="the GPU smoke test: ponder on the GPU, the API contract, then ponder vs "
        "vLLM's own server on the same GPU (vllm bench serve, best-of-N@16); without a GPU it "
        "says so and stops.")
    gpu.add_argument("--model", help="model directory (default: the embedded model)")
    gpu.add_argument("--gpu-memory-utilization", type=float, default=0.92,
                     help="both servers' (vLLM's default)")
    _output_option(gpu, None, "bench/results/gpu/smoke-<gpu name>.json")
    gpu.set_defaults(handler=_recorded(_gpu))

    sizing = kinds.add_parser(
        "sizing", help="best-of-N@16 requests a GPU holds, per model and GPU, computed from "
        "KV-cache arithmetic (no GPU needed).")
    _output_option(sizing, SIZING, "")
    sizing.set_defaults(handler=_recorded(_sizing))

    replot = kinds.add_parser(
        "plot", help="one table and accuracy-vs-tokens plot from several `bench accuracy` "
        "result files (runs measured apart on the same problems).")
    replot.add_argument("results", type=Path, nargs="+")
    replot.add_argument("--runs", help="comma-separated run name prefixes to keep")
    replot.add_argument("--title", default="accuracy vs generated tokens")
    replot.add_argument("--output", type=Path, required=True, help="the plot (PNG) to write")
    replot.set_defaults(handler=_plot)

    blocks = kinds.add_parser(
        "blocks", help="KV block sizes side by side: whole-sample tokens/s and search's "
        "prefix-cache hits (one engine at a time; give it a quiet machine).")
    _engine_options(blocks)
    blocks.add_argument("--sizes", default="32,128", help="comma-separated block sizes")
    _problems_option(blocks, 8)
    blocks.add_argument("--max-tokens", type=int, default=160)
    blocks.add_argument("--concurrency", type=int, default=4)
    blocks.add_argument("--rounds", type=int, default=2)
    _output_option(blocks, RESULTS / "blocks.json", "")
    blocks.set_defaults(handler=_recorded(_blocks))

    add_prune_signal_command(kinds)
    add_report_command(kinds)
