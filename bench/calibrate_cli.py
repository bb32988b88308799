"""``ponder calibrate``: the command, the policy file it writes, and
``--report`` (a table and a plot of a policy file)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

from ponder.bench.calibrate import DEFAULT_GRID, Records, collect, load_questions
from ponder.bench.calibrate_fit import (
    Fit,
    as_reported,
    fit,
    held_out_report,
    print_table,
    questions_from,
    split,
)


def _policy_file(result: Fit, report: dict[str, Any]) -> dict[str, Any]:
    policy = result.policy
    return {
        "source": policy.source,
        "probe": {"samples": policy.probe.samples, "answer_below": policy.probe.answer_below},
        "difficulty": {k: round(v, 4) for k, v in policy.difficulty.items()},
        "bins": [{
            "upper": round(b.upper, 4),
            "choices": {str(budget): choice for budget, choice in b.choices.items()},
            "measurements": [{"strategy": m.strategy, "accuracy": round(m.accuracy, 4),
                              "tokens": round(m.tokens, 1), "questions": m.questions}
                             for m in measured],
        } for b, measured in zip(policy.bins, result.bins)],
        "verifiers": policy.verifiers,
        "report": report,
    }


def _calibrate(args: argparse.Namespace) -> None:
    from ponder.bench.servers import free_port, launched, ponder_command
    from ponder.server.embedded_model import embedded_model_dir

    questions = load_questions(args.data)
    grid = args.grid.split(",") if args.grid else list(DEFAULT_GRID)
    args.work.mkdir(parents=True, exist_ok=True)
    records = Records(args.work / "records.jsonl")
    with contextlib.ExitStack() as stack:
        if args.url:
            base_url = args.url
        else:
            port = free_port()
            command = ponder_command(port, args.model or str(embedded_model_dir()),
                                     args.served_model_name, args.kv_cache_gb)
            base_url = stack.enter_context(
                launched("ponder", command, port, args.served_model_name)).base_url
        seconds = asyncio.run(collect(base_url, args.served_model_name, questions, grid, records,
                                      args.concurrency, args.max_tokens, args.api_key))
    keys = {q.key for q in questions}
    measured = questions_from({k: v for k, v in records.done.items() if k[0] in keys})
    train, held_out = split(measured, args.train_share, args.seed)
    source = (f"ponder calibrate --data {' '.join(args.data)} --grid {','.join(grid)} "
              f"({time.strftime('%Y-%m-%d')}, {len(train)} training questions)")
    result = fit(train, grid, source)
    table = held_out_report(held_out, grid, result)
    source_of = {q.key: q.source for q in questions}
    by_source = {source: held_out_report([q for q in held_out if source_of[q.key] == source],
                                         grid, result)
                 for source in args.data if any(source_of[q.key] == source for q in held_out)}
    report = {"data": args.data, "grid": grid, "train": len(train), "held_out": len(held_out),
              "seed": args.seed, "minutes_this_session": round(seconds / 60, 1),
              "label_free": {"combined": as_reported(result.combined_unlabelled),
                             "reward-free": as_reported(result.reward_free_unlabelled)},
              "table": table, "by_source": by_source}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_policy_file(result, report), indent=2) + "\n")
    print_table(table)
    plot_policy(json.loads(args.out.read_text()), args.out.with_suffix(".png"))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")


def _report(args: argparse.Namespace) -> None:
    policy = json.loads(args.report.read_text())
    print(f"policy: {policy['source']}")
    print(f"probe: {policy['probe']}; difficulty: {policy['difficulty']}")
    for index, b in enumerate(policy["bins"]):
        print(f"bin {index + 1} (difficulty <= {b['upper']}): {b['choices']}")
    print(f"verifiers: {policy['verifiers']}")
    if "report" in policy:
        print(f"held-out ({policy['report']['held_out']} questions):")
        print_table(policy["report"]["table"])
        for source, table in policy["report"].get("by_source", {}).items():
            print(f"held-out, {source}:")
            print_table(table)
    path = args.report.with_suffix(".png")
    plot_policy(policy, path)
    print(f"wrote {path}")


def plot_policy(policy: dict[str, Any], path: Path) -> None:
    """Held-out accuracy against tokens per strategy family, with ``auto``
    at each budget drawn over them as the chosen frontier."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = policy.get("report", {}).get("table", [])
    figure, axes = plt.subplots(figsize=(9, 6))
    families: dict[str, list[dict[str, Any]]] = {}
    for row in table:
        if "@" in row["run"] and not row["run"].startswith(("bon[", "pass")):
            families.setdefault(row["run"].split("@")[0], []).append(row)
    for family, rows in families.items():
        rows = sorted(rows, key=lambda r: r["tokens"])
        style = {"linewidth": 3, "color": "black", "zorder": 5} if family == "auto" else {}
        axes.errorbar([r["tokens"] for r in rows], [100 * r["accuracy"] for r in rows],
                      yerr=[[100 * (r["accuracy"] - r["ci95"][0]) for r in rows],
                            [100 * (r["ci95"][1] - r["accuracy"]) for r in rows]],
                      marker="o", capsize=3, label=family, **style)
    axes.set_xscale("log")
    axes.set_xlabel("generated tokens per question (log scale)")
    axes.set_ylabel("held-out accuracy (%), 95% CI")
    axes.set_title("calibration: strategies and the chosen frontier (auto)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _handler(args: argparse.Namespace) -> None:
    if args.report is not None:
        _report(args)
        return
    if not args.data or args.out is None:
        raise SystemExit("ponder calibrate: --data and --out are needed (or --report FILE)")
    _calibrate(args)


def add_calibrate_command(commands: Any) -> None:
    parser = commands.add_parser(
        "calibrate", help="Measure strategies and verifiers on your questions; write the policy "
        "that strategy auto and the combined verifiers follow.")
    parser.add_argument("--data", nargs="+", default=[],
                        help="JSONL of {question, answer} (GSM8K's too), FILE:COUNT, or "
                        "gen:LEVEL:COUNT:SEED (bench's generated sets); several mix")
    parser.add_argument("--out", type=Path, help="the policy file to write")
    parser.add_argument("--report", type=Path, help="print a policy file as a table and plot it")
    parser.add_argument("--url", help="a running ponder server (default: start one)")
    parser.add_argument("--api-key")
    parser.add_argument("--model", help="model directory (default: the embedded model)")
    parser.add_argument("--served-model-name", default="smollm2")
    parser.add_argument("--kv-cache-gb", type=float, default=4.0)
    parser.add_argument("--work", type=Path, default=Path("bench/results/calibrate"),
                        help="where measurements are kept (a rerun continues from them)")
    parser.add_argument("--grid", help=f"searches to measure (default: {','.join(DEFAULT_GRID)})")
    parser.add_argument("--train-share", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0, help="of the train/held-out split")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.set_defaults(handler=_handler)
