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

import httpx

from ponder.bench.calibrate import (
    DEFAULT_GRID,
    Question,
    Records,
    RecordsError,
    collect,
    grid_runs,
    load_questions,
)
from ponder.bench.calibrate_fit import (
    Fit,
    as_reported,
    fit,
    held_out_report,
    print_table,
    questions_from,
    split,
)
from ponder.bench.probe_samples import RUN, collect_samples, interleaved, run_name
from ponder.core.fingerprint import ModelIdentity, identity_from_json
from ponder.core.policy import shown_source
from ponder.core.steps import STEP_DELIMITER
from ponder.prm.probe_file import PROBE_KEY
from ponder.server.hardware import CPU_KV_CACHE_GB


def _policy_file(result: Fit, report: dict[str, Any]) -> dict[str, Any]:
    policy = result.policy
    return {
        "source": policy.source,
        "model": policy.model.as_json(),
        "probe": {"samples": policy.probe.samples, "answer_below": policy.probe.answer_below},
        "difficulty": {k: round(v, 4) for k, v in policy.difficulty.items()},
        "bins": [{
            "upper": round(b.upper, 4),
            "choices": {str(budget): str(choice) for budget, choice in b.choices.items()},
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
    try:
        grid = grid_runs(args.grid.split(",") if args.grid else DEFAULT_GRID)
    except ValueError as error:
        raise SystemExit(f"ponder calibrate: --grid: {error}") from None
    args.work.mkdir(parents=True, exist_ok=True)
    path = args.work / "records.jsonl"
    probe = args.probe if args.probe is not None else args.url is None
    seconds = 0.0
    try:
        if args.refit:
            records = Records(path, Records.model_of(path))
        else:
            with contextlib.ExitStack() as stack:
                if args.url:
                    base_url = args.url
                else:
                    port = free_port()
                    command = ponder_command(port, args.model or str(embedded_model_dir()),
                                             args.served_model_name, args.kv_cache_gb)
                    base_url = stack.enter_context(
                        launched("ponder", command, port, args.served_model_name)).base_url
                records = Records(path, served_model(base_url, args.api_key))
                if not args.probe_only:
                    seconds = asyncio.run(collect(
                        base_url, args.served_model_name, questions, grid, records,
                        args.concurrency, args.max_tokens, args.api_key))
                if probe:
                    seconds += asyncio.run(collect_samples(
                        base_url, args.served_model_name, interleaved(questions), records,
                        samples=args.probe_samples, concurrency=args.concurrency,
                        max_tokens=args.max_tokens, api_key=args.api_key))
    except RecordsError as error:
        raise SystemExit(f"ponder calibrate: {error}") from None
    probe_file = None
    if probe:
        probe_file = _fit_probe(args, questions, records, seconds)
    if not args.probe_only:
        _fit_policy(args, questions, grid, records, seconds, probe_file)
    elif probe_file is not None and args.output.exists():
        policy = json.loads(args.output.read_text())
        _weigh_probe(policy, probe_file)
        args.output.write_text(json.dumps(policy, indent=2) + "\n")


def _weigh_probe(policy: dict[str, Any], probe_file: Path) -> None:
    """The policy names the probe fit beside it, and its combined verifier
    (what ``auto``'s best-of-N and searches score with) takes the probe in
    with the weights the probe's fit found, only if that picked better on
    the probe's held-out questions: never worse on any of their sources, and
    better on one (each a paired difference's 95% interval). Either way the
    policy's report says what was measured."""
    report = json.loads(probe_file.read_text())["report"]
    gains = {source: pairs["combined+probe - combined"]
             for source, pairs in report["paired"].items()}
    adopted = (all(g["ci95"][0] >= 0 for g in gains.values())
               and any(g["ci95"][0] > 0 for g in gains.values()))
    policy[PROBE_KEY] = probe_file.name
    if adopted:
        policy["verifiers"]["combined"] = report["combined+probe weights"]
    policy.setdefault("report", {})["probe_in_combined"] = {
        "adopted": adopted, "best_of_n": report["samples"],
        "combined+probe - combined": gains}


def _fit_probe(args: argparse.Namespace, questions: list[Question], records: Records,
               seconds: float) -> Path:
    """The probe, fit and written beside the policy (``<policy>-probe.json``
    and its ``.safetensors``); the report printed."""
    from ponder.bench.probe_calibrate import fit_and_report, print_report
    from ponder.prm.probe_file import write_probe
    from ponder.server.config import EMBEDDED_STEP_DELIMITER
    from ponder.server.embedded_model import embedded_model_dir, is_embedded_model

    model_dir = Path(args.model) if args.model else embedded_model_dir()
    if not (model_dir / "config.json").is_file():
        raise SystemExit("ponder calibrate --probe reads hidden states from the model's own "
                         f"files; give --model a local model directory ({model_dir} is not)")
    run = run_name(args.probe_samples)
    # Grouped by the source as --data names it now: a record made under a
    # smaller count of the same generated set is one of its questions.
    rows = [{**records.done[q.key, run], "source": q.source} for q in questions
            if (q.key, run) in records.done]
    delimiter = (EMBEDDED_STEP_DELIMITER if args.model is None or is_embedded_model(args.model)
                 else STEP_DELIMITER)
    command = (f"ponder calibrate{' --probe-only' if args.probe_only else ' --probe'} --data "
               f"{' '.join(shown_source(d) for d in args.data)} --output {args.output} --work "
               f"{args.work} --probe-samples {args.probe_samples} --max-tokens "
               f"{args.max_tokens} --concurrency {args.concurrency} --train-share "
               f"{args.train_share} --seed {args.seed} ({time.strftime('%Y-%m-%d')})")
    result = fit_and_report(rows, model_dir, records.model, delimiter=delimiter,
                            held_out_share=1 - args.train_share, seed=args.seed,
                            samples=args.probe_samples, command=command)
    result.report["minutes_sampling_this_session"] = round(seconds / 60, 1)
    out = args.output.with_name(f"{args.output.stem}-probe.json")
    write_probe(result.probe, out)
    (args.work / "probe-report.json").write_text(json.dumps(result.report, indent=2) + "\n")
    print_report(result.report)
    print(f"wrote {out}, {out.with_suffix('.safetensors')} and {args.work / 'probe-report.json'}")
    return out


def _fit_policy(args: argparse.Namespace, questions: list[Question], grid: list[str],
                records: Records, seconds: float, probe_file: Path | None) -> None:
    model = records.model
    keys = {q.key for q in questions}
    measured = questions_from({k: v for k, v in records.done.items()
                               if k[0] in keys and not k[1].startswith(RUN)})
    train, held_out = split(measured, args.train_share, args.seed)
    refit = " --refit" if args.refit else ""
    source = shown_source(f"ponder calibrate{refit} --data {' '.join(args.data)} --grid "
                          f"{','.join(grid)} ({time.strftime('%Y-%m-%d')}, {len(train)} "
                          "training questions)")
    result = fit(train, grid, source, model)
    table = held_out_report(held_out, grid, result)
    source_of = {q.key: q.source for q in questions}
    by_source = {shown_source(source): held_out_report(
                     [q for q in held_out if source_of[q.key] == source], grid, result)
                 for source in args.data if any(source_of[q.key] == source for q in held_out)}
    report = {"data": [shown_source(spec) for spec in args.data], "grid": grid, "train": len(train), "held_out": len(held_out),
              "seed": args.seed, "minutes_this_session": round(seconds / 60, 1),
              "label_free": {"combined": as_reported(result.combined_unlabelled),
                             "reward-free": as_reported(result.reward_free_unlabelled)},
              "table": table, "by_source": by_source}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    policy = _policy_file(result, report)
    probe_file = probe_file or _probe_named(args.output)
    if probe_file is not None:
        _weigh_probe(policy, probe_file)
    args.output.write_text(json.dumps(policy, indent=2) + "\n")
    print_table(table)
    plot_policy(json.loads(args.output.read_text()), args.output.with_suffix(".png"))
    print(f"wrote {args.output} and {args.output.with_suffix('.png')}")


def _probe_named(policy_path: Path) -> Path | None:
    """The probe the policy being replaced names, kept when this run fits
    none (``--no-probe``): a policy refit does not drop its probe."""
    from ponder.server.config import probe_named_by

    named = probe_named_by(policy_path)
    return named if named is not None and named.exists() else None


def served_model(base_url: str, api_key: str | None) -> ModelIdentity:
    """The model the server serves, as its measurements will name it."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    listing = httpx.get(f"{base_url}/v1/strategies", headers=headers, timeout=60).json()
    return identity_from_json(listing.get("model"), "model")


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
    if not args.data or args.output is None:
        raise SystemExit("ponder calibrate: --data and --output are needed (or --report FILE)")
    _calibrate(args)


def add_calibrate_command(commands: Any) -> None:
    parser = commands.add_parser(
        "calibrate", help="Measure strategies and verifiers on your questions; write the policy "
        "that strategy auto and the combined verifiers follow.")
    parser.add_argument("--data", nargs="+", default=[],
                        help="JSONL of {question, answer} (GSM8K's too), FILE:COUNT, or "
                        "gen:LEVEL:COUNT:SEED (bench's generated sets); several mix")
    parser.add_argument("--output", type=Path, help="the policy file to write")
    parser.add_argument("--out", dest="output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help="print a policy file as a table and plot it")
    parser.add_argument("--url", help="a running ponder server (default: start one)")
    parser.add_argument("--api-key")
    parser.add_argument("--model", help="model directory (default: the embedded model)")
    parser.add_argument("--served-model-name", default="smollm2")
    parser.add_argument("--kv-cache-gb", type=float,
                        default=CPU_KV_CACHE_GB,
                        help="KV cache of the engine started, in GiB (default: %(default)s, "
                        "as ponder serve on a CPU)")
    parser.add_argument("--work", type=Path, default=Path("bench/results/calibrate"),
                        help="where measurements are kept (a rerun continues from them)")
    parser.add_argument("--refit", action="store_true",
                        help="fit again from the measurements in --work alone, asking no server "
                        "(after a change to the fit; the records name their model)")
    parser.add_argument("--grid", help="choices to measure beside the votes and best-of-N the "
                        "samples give offline, comma-separated, options after '?' (quote them "
                        "in a shell): searches, or self_consistency@16?first=4, "
                        "best_of_n@16?prune_every=32&prune_keep=0.5 (default: "
                        f"{','.join(DEFAULT_GRID)})")
    parser.add_argument("--train-share", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0, help="of the train/held-out split")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--probe", action=argparse.BooleanOptionalAction, default=None,
                        help="also fit the hidden-state probe (prm 'probe') on samples of "
                        "these questions and write it beside the policy (default: on when "
                        "calibrate starts the server itself, so the model's files are here)")
    parser.add_argument("--probe-only", action="store_true",
                        help="sample and fit the probe alone; the policy is left as it is")
    parser.add_argument("--probe-samples", type=int, default=8,
                        help="samples per question the probe is fit and judged on")
    parser.set_defaults(handler=_handler)
