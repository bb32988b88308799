"""One table per kind of result file, for ``ponder bench report``.

Each renderer takes the section's sources (files with their rows) and
returns the Markdown table and the facts (``name -> text``) that the
section's prose and the README's summary may quote by ``{name}``, so that a
number in a sentence comes from the same file as the table beside it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Source:
    """A result file as one section shows it."""

    path: str
    """Relative to the repository root."""
    data: Any
    provenance: dict[str, Any]
    runs: list[str] | None = None
    """The runs of an accuracy file to show (all when None)."""
    index: int = 1
    """Its number in the section's list of files."""


@dataclass
class Rendered:
    table: list[str]
    facts: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    """The accuracy rows shown, for the plot."""


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def ratio(value: float) -> str:
    return f"{value:.2f}x"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def strategy_text(strategy: dict[str, Any]) -> str:
    """``best_of_n n=16 prm=step-checker``: the strategy object a run sent,
    its name first, options that are off left out."""
    options = {k: v for k, v in strategy.items() if k != "name" and v is not False}
    parts = [f"`{strategy['name']}`"] if "name" in strategy else []
    parts += [f"{key}={value if isinstance(value, str) else json.dumps(value)}"
              for key, value in options.items()]
    return " ".join(parts)


# accuracy: `ponder bench accuracy` files -----------------------------------

ACCURACY_COLUMNS: dict[str, tuple[str, Callable[[dict[str, Any]], str], str]] = {
    # column: (heading, cell, the key of the run it reads)
    "accuracy": ("accuracy (95% CI)", lambda r: f"{percent(r['accuracy'])} "
                 f"({100 * r['ci95'][0]:.0f}-{100 * r['ci95'][1]:.0f})", "accuracy"),
    "pass": ("pass@n", lambda r: percent(r["pass_at_n"]), "pass_at_n"),
    "tokens": ("tokens / problem", lambda r: f"{r['mean_tokens']:.0f}", "mean_tokens"),
    "scoring": ("PRM tokens / problem", lambda r: f"{r['mean_scoring_tokens']:.0f}",
                "mean_scoring_tokens"),
    "cache": ("prefix-cache hits", lambda r: f"{100 * r['cache_hit_rate']:.0f}%",
              "cache_hit_rate"),
    "latency": ("latency / problem", lambda r: f"{r['mean_latency_s']:.1f} s", "mean_latency_s"),
    "wall": ("wall (all problems)", lambda r: f"{r['wall_s']:.0f} s", "wall_s"),
}
DEFAULT_ACCURACY_COLUMNS = ("accuracy", "pass", "tokens", "latency")
FACT_COLUMNS = ("pass", "tokens", "cache", "latency", "wall")
"""What prose may quote of a run besides its accuracy (``{run.tokens}``)."""


def accuracy_rows(source: Source) -> list[dict[str, Any]]:
    """The file's runs (a report's ``runs``, or a JSONL of them), those the
    manifest names, in its order."""
    runs = source.data["runs"] if isinstance(source.data, dict) else source.data
    if source.runs is None:
        return list(runs)
    by_name = {run["run"]: run for run in runs}
    missing = [name for name in source.runs if name not in by_name]
    if missing:
        raise ValueError(f"{source.path} has no run {', '.join(missing)}")
    return [by_name[name] for name in source.runs]


def render_accuracy(sources: Sequence[Source], columns: Sequence[str] | None) -> Rendered:
    chosen = list(columns or DEFAULT_ACCURACY_COLUMNS)
    several = len(sources) > 1
    header = ["run", "strategy", *(ACCURACY_COLUMNS[c][0] for c in chosen)]
    if several:
        header.append("file")
    rows, shown = [], []
    facts: dict[str, str] = {}
    for source in sources:
        if isinstance(source.data, dict):  # the settings all its runs share
            facts.setdefault("set", str(source.data["problems"]))
            facts.setdefault("max_tokens", str(source.data["max_tokens"]))
        for run in accuracy_rows(source):
            if any(run["run"] == seen["run"] for seen in shown):
                raise ValueError(f"run {run['run']} is in two files of one section")
            cells = [f"`{run['run']}`", strategy_text(run["strategy"]),
                     *(ACCURACY_COLUMNS[c][1](run) if ACCURACY_COLUMNS[c][2] in run else ""
                       for c in chosen)]
            rows.append(cells + ([f"[{source.index}]"] if several else []))
            shown.append(run)
            facts[f"{run['run']}.accuracy"] = percent(run["accuracy"])
            facts.update({f"{run['run']}.{column}": ACCURACY_COLUMNS[column][1](run)
                          for column in FACT_COLUMNS if ACCURACY_COLUMNS[column][2] in run})
            facts[f"{run['run']}.problems"] = str(run["problems"])
        facts.update(paired_facts(source))
    return Rendered(table(header, rows), facts, shown)


def paired_facts(source: Source) -> dict[str, str]:
    """A file's paired comparisons (``--paired NEW:OLD``), quotable as
    ``{NEW-vs-OLD.difference}`` (in points, with its 95% interval),
    ``{NEW-vs-OLD.tokens_ratio}`` and ``{NEW-vs-OLD.wall_ratio}``, and by the
    new run's name alone (``{NEW.difference}``) where it is compared once."""
    pairs = source.data.get("paired", []) if isinstance(source.data, dict) else []
    compared = Counter(pair["new"] for pair in pairs)
    facts = {}
    for pair in pairs:
        low, high = (100 * bound for bound in pair["ci95"])
        values = {"difference": f"{100 * pair['difference']:+.1f} points "
                                f"(95% CI {low:+.1f} to {high:+.1f})",
                  "tokens_ratio": ratio(pair["tokens_ratio"]),
                  "wall_ratio": ratio(pair["wall_ratio"])}
        names = [f"{pair['new']}-vs-{pair['old']}"]
        if compared[pair["new"]] == 1:
            names.append(pair["new"])
        facts.update({f"{name}.{key}": value for name in names for key, value in values.items()})
    return facts


# overhead and fan-out: ponder beside vLLM's own server ----------------------

def render_overhead(sources: Sequence[Source], _: Sequence[str] | None) -> Rendered:
    report = sources[0].data
    columns = ("throughput_tok_s", "ttft_p50_s", "ttft_p95_s", "latency_p50_s", "latency_p95_s")
    rows = [["vLLM's own server" if name == "vllm" else "ponder",
             f"{report[name]['throughput_tok_s']:.1f}",
             *(f"{report[name][c]:.3f} s" for c in columns[1:])] for name in ("vllm", "ponder")]
    rows.append(["ponder / vLLM", f"**{ratio(report['throughput_ratio'])}**",
                 f"**{ratio(report['ttft_p50_ratio'])}**", "",
                 ratio(report["latency_p50_ratio"]), ""])
    facts = {"throughput_ratio": ratio(report["throughput_ratio"]),
             "ttft_p50_ratio": ratio(report["ttft_p50_ratio"]),
             "latency_p50_ratio": ratio(report["latency_p50_ratio"]),
             "requests": str(report["ponder"]["requests"]),
             "output_tokens": f"{report['ponder']['output_tokens']:,}"}
    header = ["server", "output tokens/s", "TTFT p50", "TTFT p95", "latency p50", "latency p95"]
    return Rendered(table(header, rows), facts)


def render_fanout(sources: Sequence[Source], _: Sequence[str] | None) -> Rendered:
    rows, facts = [], {}
    for source in sources:
        report = source.data.get("fanout_throughput", source.data)
        through = report.get("through", "self_consistency")
        name = f"{through}@{report['n']}"
        rows.append([f"`{through}`, n={report['n']}", str(report["problems"]),
                     str(report["concurrency"]), f"{report['vllm']['throughput_tok_s']:.1f}",
                     f"{report['ponder']['throughput_tok_s']:.1f}",
                     f"**{ratio(report['ratio'])}**", f"[{source.index}]"])
        facts[f"{name}.ratio"] = ratio(report["ratio"])
    header = ["ponder's side", "problems", "concurrency", "vLLM n= tokens/s",
              "ponder tokens/s", "ponder / vLLM", "file"]
    return Rendered(table(header, rows), facts)


# engine settings and scale-out ----------------------------------------------

def render_blocks(sources: Sequence[Source], _: Sequence[str] | None) -> Rendered:
    report = sources[0].data
    rows, facts = [], {}
    for workload, bests in report["best"].items():
        for best in bests:
            size = best["block_size"]
            hits = best.get("prefix_cache_hit_rate")
            rows.append([workload, size, f"{best['throughput_tok_s']:.0f}",
                         "" if hits is None else f"{100 * hits:.0f}%"])
            key = "search" if "search" in workload else "samples"
            facts[f"{key}.{size}.tokens_s"] = f"{best['throughput_tok_s']:.0f}"
            facts[f"{key}.{size}.hits"] = "" if hits is None else f"{100 * hits:.0f}%"
    header = ["workload", "block size (tokens)", "tokens/s (best round)", "prefix-cache hits"]
    return Rendered(table(header, rows), facts)


def render_scale(sources: Sequence[Source], _: Sequence[str] | None) -> Rendered:
    report = sources[0].data
    rows, facts = [], {}
    for run in report["runs"]:
        key = f"{run['config']}/{run['workload']}"
        share = report["ratios"].get(key)
        hits = ", ".join(f"{100 * p['hit_rate']:.1f}%" if p["queries"] else "none"
                         for p in run["prefix_cache"])
        rows.append([run["config"], f"`{run['workload']}`", f"{run['throughput_tok_s']:.0f}",
                     "1.00x" if share is None else ratio(share),
                     f"{run['latency_p50_s']:.2f} s", f"{run['latency_p95_s']:.2f} s", hits])
        if share is not None:
            facts[f"{key}.ratio"] = ratio(share)
        facts[f"{key}.hits"] = hits
    overhead = report["one_token_overhead"]
    facts["added_median_ms"] = f"{overhead['added_median_ms']:.1f} ms"
    facts["embedded_median_ms"] = f"{overhead['embedded']['median_ms']:.1f} ms"
    facts["remote_median_ms"] = f"{overhead['remote-1']['median_ms']:.1f} ms"
    header = ["configuration", "workload", "tokens/s", "over embedded", "latency p50",
              "latency p95", "prefix-cache hits per engine"]
    return Rendered(table(header, rows), facts)


# reliability -------------------------------------------------------------------

def render_fairness(sources: Sequence[Source], _: Sequence[str] | None) -> Rendered:
    rounds = sources[0].data["rounds"]
    rows = []
    for index, r in enumerate(rounds, 1):
        heavy = ", ".join(f"{h['status']} in {h['seconds']:.0f} s" for h in r["heavy"])
        rows.append([index, f"{r['alone']['p50_s']:.2f} s", f"{r['with_heavy']['p50_s']:.2f} s",
                     ratio(r["p50_ratio"]), f"{r['alone']['p99_s']:.2f} s",
                     f"{r['with_heavy']['p99_s']:.2f} s", f"**{ratio(r['p99_ratio'])}**", heavy])
    facts = {"p99_ratios": ", ".join(ratio(r["p99_ratio"]) for r in rounds),
             "small_requests": str(rounds[0]["alone"]["requests"]),
             "heavy_n": str(rounds[0]["heavy"][0]["samples"])}
    header = ["round", "p50 alone", "p50 beside heavy", "ratio", "p99 alone", "p99 beside heavy",
              "ratio", "heavy requests"]
    return Rendered(table(header, rows), facts)


SOAK_FIGURES = {
    "api_rss_mib": "API process RSS, MiB",
    "enginecore_rss_mib": "engine core RSS, MiB",
    "worker_largest_anonymous_mib": "engine worker: KV cache (its largest mapping), MiB",
    "worker_heap_mib": "engine worker: malloc heap, MiB",
    "worker_other_anonymous_mib": "engine worker: other anonymous memory, MiB",
    "worker_arenas": "engine worker: glibc thread arenas",
    "tree_fds": "open file descriptors (whole process tree)",
}


def render_soak(sources: Sequence[Source], _: Sequence[str] | None) -> Rendered:
    report = sources[0].data
    verdict = report["verdict"]
    rows = [[label, verdict[key]["second_half_start"], verdict[key]["end"],
             f"{verdict[key]['growth_pct']:+.1f}%"] for key, label in SOAK_FIGURES.items()]
    rows.append(["asyncio tasks, idle before and after", verdict["asyncio_tasks_before"],
                 verdict["asyncio_tasks_idle"], ""])
    statuses = report["statuses"]
    facts = {"minutes": f"{report['minutes']:.0f}", "clients": str(report["clients"]),
             "requests": f"{sum(report['requests'].values()):,}",
             "answered": f"{statuses.get('200', 0):,}", "refused": f"{statuses.get('400', 0):,}",
             "left": f"{statuses.get('left', 0):,}",
             "server_errors": str(len(report["server_errors"])),
             "worker_heap_growth": f"{verdict['worker_heap_mib']['growth_pct']:+.1f}%"}
    header = ["figure", "second half, start", "end", "growth"]
    return Rendered(table(header, rows), facts)


# calibration: the shipped policy's held-out report -------------------------------

def render_policy(sources: Sequence[Source], columns: Sequence[str] | None) -> Rendered:
    report = sources[0].data["report"]
    shown = set(columns or [])
    rows, facts = [], {}
    for run in report["table"]:
        name = run["run"]
        facts[f"{name}.accuracy"] = percent(run["accuracy"])
        if name.startswith("pass@"):
            continue
        facts[f"{name}.tokens"] = f"{run['tokens']:.0f}"
        if shown and name not in shown:
            continue
        interval = f"({100 * run['ci95'][0]:.0f}-{100 * run['ci95'][1]:.0f})"
        rows.append([f"`{name}`", f"{percent(run['accuracy'])} {interval}",
                     f"{run['tokens']:.0f}"])
    facts["held_out"] = str(report["held_out"])
    facts["train"] = str(report["train"])
    header = ["run (held out)", "accuracy (95% CI)", "tokens / question"]
    return Rendered(table(header, rows), facts)


# set-up: how long the two commands take ----------------------------------------

def render_setup(sources: Sequence[Source], _: Sequence[str] | None) -> Rendered:
    report = sources[0].data
    rows, facts = [], {}
    for step in report["steps"]:
        disk = f" ({step['disk_gb']:g} GB on disk)" if "disk_gb" in step else ""
        rows.append([f"`{step['command']}`", step["what"] + disk, f"{step['minutes']:.0f} min"])
        facts[f"{step['name']}.minutes"] = f"{step['minutes']:.0f}"
        for key in ("tests", "disk_gb"):
            if key in step:
                facts[f"{step['name']}.{key}"] = f"{step[key]:g}"
    return Rendered(table(["command", "what it did", "time"], rows), facts)


RENDERERS: dict[str, Callable[[Sequence[Source], Sequence[str] | None], Rendered]] = {
    "accuracy": render_accuracy,
    "overhead": render_overhead,
    "fanout": render_fanout,
    "blocks": render_blocks,
    "scale": render_scale,
    "fairness": render_fairness,
    "soak": render_soak,
    "policy": render_policy,
    "setup": render_setup,
}
