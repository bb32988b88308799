"""What test-time compute buys: accuracy against generated tokens, per
strategy, over the same problems, through a running ponder server.

Every run sends each problem as a plain chat request with one strategy and
compares the answer with the gold one by mathematical equivalence. pass@n
(any sample right) is the ceiling that a perfect verifier could reach.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

from ponder.bench.problems import Problem
from ponder.core.answers import answers_equivalent
from ponder.strategies import STRATEGIES
from ponder.strategies.answers import extract_answer

SAMPLE_TEMPERATURE = 0.7  # as in the model's measured table (shared/ENGINE-NOTES.md)
SEARCH_SHAPES = {4: 2, 16: 4}
"""Continuations per round N -> expand: beam search keeps N / expand lines,
DVTS grows N / expand subtrees."""
SEARCH_DELIMITER = "\n"
"""The embedded model writes a step per line, seldom a blank line between."""
SEARCH_MAX_STEPS = 8


@dataclass(frozen=True)
class RunSpec:
    name: str
    strategy: dict[str, Any] | None
    """None: the server chooses (its default, or ``effort``'s preset)."""
    temperature: float
    effort: str | None = None
    """A `reasoning_effort` level to send, as clients with an effort control do."""
    max_tokens: int | None = None
    """Its own `max_tokens`, where it is measured on longer chains than the rest."""

    @property
    def max_samples(self) -> int:
        """The most samples one run of it may draw, as the server counts them
        against its ``--max-samples`` (an effort level's preset is the
        server's own, checked when it starts)."""
        if self.strategy is None:
            return 1
        options = dict(self.strategy)
        return STRATEGIES[options.pop("name")].config(**options).max_samples


def sample_cap(base_url: str, api_key: str | None = None) -> int:
    """A running server's ``--max-samples``, as its ``/openapi.json`` states
    it (the largest ``n`` a strategy object may take)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    schema = httpx.get(f"{base_url}/openapi.json", headers=headers, timeout=30).json()
    caps = [component["properties"]["n"]["maximum"]
            for component in schema.get("components", {}).get("schemas", {}).values()
            if component.get("properties", {}).get("name", {}).get("const") in STRATEGIES
            and "maximum" in component["properties"].get("n", {})]
    if not caps:
        raise SystemExit(f"{base_url}/openapi.json states no --max-samples")
    return min(caps)


def default_runs(ns: Sequence[int] = (1, 2, 4, 8, 16),
                 bon_ns: Sequence[int] = (4, 8, 16)) -> list[RunSpec]:
    runs = [
        RunSpec("greedy", {"name": "none"}, 0.0),
        RunSpec("cot-greedy", {"name": "cot"}, 0.0),
    ]
    for prompt in ("direct", "cot"):
        runs += [
            RunSpec(f"sc-{prompt}@{n}", {"name": "self_consistency", "n": n, "prompt": prompt},
                    SAMPLE_TEMPERATURE)
            for n in ns
        ]
    for prm in ("step-checker", "self-certainty", "mean-logprob", "self-judge"):
        for vote, suffix in ((False, ""), (True, "-vote")):
            runs += [
                RunSpec(f"bon-{prm}{suffix}@{n}",
                        {"name": "best_of_n", "n": n, "prm": prm, "weighted_vote": vote,
                         "prompt": "direct"}, SAMPLE_TEMPERATURE)
                for n in bon_ns
            ]
    for name, options in DEEPCONF.items():
        runs += [
            RunSpec(f"{name}@{n}", {"name": "self_consistency", "n": n, "prompt": "direct",
                                    **options}, SAMPLE_TEMPERATURE)
            for n in bon_ns
        ]
    runs += search_runs("step-checker")
    runs += effort_runs()
    runs += scaling_runs()
    runs += cheaper_runs()
    runs += probe_runs()
    return runs


SHORT_MS = (2, 4, 8)
PRUNE_EVERY = 16
LONG_CHAIN_TOKENS = 512
EXIT_EVERY = 32


def cheaper_runs() -> list[RunSpec]:
    """The same answer for less compute, each beside what it saves on, as a
    new user sends them (the server's PRM and prompt style): short-m@k
    beside self-consistency@16; speculative rejection at 16 beside
    best-of-16, at 32 where it spends about what best-of-16 does, and at 4
    and 8 as the lightest settings to set beside a peer's vote; cot
    with early exit beside cot, greedy on long step-by-step chains."""
    runs = [RunSpec("cheap-sc@16", {"name": "self_consistency", "n": 16}, SAMPLE_TEMPERATURE)]
    runs += [RunSpec(f"cheap-short-m{m}@16", {"name": "self_consistency", "n": 16, "first": m},
                     SAMPLE_TEMPERATURE) for m in SHORT_MS]
    runs += [RunSpec("cheap-bon@16", {"name": "best_of_n", "n": 16}, SAMPLE_TEMPERATURE)]
    runs += [RunSpec(f"cheap-bon-pruned@{n}", {"name": "best_of_n", "n": n,
                                               "prune_every": PRUNE_EVERY}, SAMPLE_TEMPERATURE)
             for n in (4, 8, 16, 32)]
    long = {"max_tokens": LONG_CHAIN_TOKENS}
    runs += [
        RunSpec("cheap-cot-long", {"name": "cot"}, 0.0, **long),  # type: ignore[arg-type]
        RunSpec("cheap-cot-exit", {"name": "cot", "early_exit": {"every": EXIT_EVERY}}, 0.0,
                **long),  # type: ignore[arg-type]
    ]
    return runs


def effort_runs(levels: Sequence[str] = ("low", "medium", "high")) -> list[RunSpec]:
    """What each `reasoning_effort` level buys with the server's presets,
    sent as a client with an effort control sends it: no strategy field."""
    return [RunSpec(f"effort-{level}", None, SAMPLE_TEMPERATURE, effort=level)
            for level in levels]


def search_runs(prm: str, prompts: Sequence[str] = ("direct", "cot")) -> list[RunSpec]:
    """beam_search and dvts at N = 4 and 16 continuations per round, beside
    best_of_n at the same N with the same scorer and prompt."""
    runs = []
    for prompt in prompts:
        suffix = "" if prompt == "direct" else f"-{prompt}"
        common = {"prm": prm, "prompt": prompt}
        search = {**common, "step_delimiter": SEARCH_DELIMITER, "max_steps": SEARCH_MAX_STEPS}
        for n, expand in SEARCH_SHAPES.items():
            if prompt != "direct":  # best_of_n with the direct prompt is in the default grid
                runs.append(RunSpec(f"bon-{prm}{suffix}@{n}", {"name": "best_of_n", "n": n,
                                    **common}, SAMPLE_TEMPERATURE))
            runs.append(RunSpec(f"beam-{prm}{suffix}@{n}", {
                "name": "beam_search", "beam_width": n // expand, "expand": expand, **search},
                SAMPLE_TEMPERATURE))
            runs.append(RunSpec(f"dvts-{prm}{suffix}@{n}", {
                "name": "dvts", "n": n, "expand": expand, **search}, SAMPLE_TEMPERATURE))
    return runs


SCALING_NS = (4, 8, 16, 32)


def scaling_runs(ns: Sequence[int] = SCALING_NS) -> list[RunSpec]:
    """best_of_n, beam_search, dvts and particle_filtering at each N, as a
    new user sends them: the name and size, everything else the server's
    defaults (its PRM, prompt style and step delimiter). Each is sized as a
    policy's choice of it is (its config's ``sized``)."""
    short = {"best_of_n": "bon", "beam_search": "beam", "dvts": "dvts",
             "particle_filtering": "pf"}
    return [RunSpec(f"scale-{label}@{n}", {"name": name, **(STRATEGIES[name].config.sized(n) or {})},
                    SAMPLE_TEMPERATURE)
            for n in ns for name, label in short.items()]


def probe_runs(ns: Sequence[int] = (8, 16)) -> list[RunSpec]:
    """best_of_n and particle filtering weighted by the hidden-state probe
    (the server's own, ``prm: "probe"``), to set beside the scaling runs of
    the same size, which use the server's default PRM."""
    return [RunSpec(f"probe-{label}@{n}", {"name": name, **(STRATEGIES[name].config.sized(n) or {}),
                                           "prm": "probe"}, SAMPLE_TEMPERATURE)
            for n in ns for name, label in (("best_of_n", "bon"), ("particle_filtering", "pf"))]


DEEPCONF: dict[str, dict[str, Any]] = {
    # The paper's two settings: vote with the 10% or the 90% most confident.
    "deepconf-low": {"weighting": "confidence", "keep": 0.1},
    "deepconf-high": {"weighting": "confidence", "keep": 0.9},
    # Online: a warm-up of 4 sets the bar; weak samples are stopped in the engine.
    "deepconf-online-low": {"weighting": "confidence", "keep": 0.1, "online": True},
    "deepconf-online-high": {"weighting": "confidence", "keep": 0.9, "online": True},
}
"""DeepConf (self_consistency's confidence options), next to plain voting."""


@dataclass
class RunResult:
    name: str
    strategy: dict[str, Any]
    correct: list[bool] = field(default_factory=list)
    any_correct: list[bool] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    scoring_tokens: list[int] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    cached_tokens: list[int] = field(default_factory=list)
    latency_s: list[float] = field(default_factory=list)
    errors: int = 0
    wall_s: float = 0.0
    by_problem: dict[int, bool] = field(default_factory=dict)
    """Problem index -> answered right, to pair two runs question by question."""

    def summary(self) -> dict[str, Any]:
        count = len(self.correct)
        accuracy = sum(self.correct) / count if count else 0.0
        low, high = wilson_interval(sum(self.correct), count)
        return {
            "run": self.name,
            "strategy": self.strategy,
            "problems": count,
            "accuracy": round(accuracy, 4),
            "ci95": [round(low, 4), round(high, 4)],
            "pass_at_n": round(sum(self.any_correct) / count, 4) if count else 0.0,
            "mean_tokens": round(sum(self.tokens) / count, 1) if count else 0.0,
            "mean_scoring_tokens": round(sum(self.scoring_tokens) / count, 1) if count else 0.0,
            "mean_prompt_tokens": round(sum(self.prompt_tokens) / count, 1) if count else 0.0,
            # Of every engine call's prompt tokens, those the prefix cache served.
            "cache_hit_rate": round(sum(self.cached_tokens) / max(1, sum(self.prompt_tokens)), 4),
            "mean_latency_s": round(sum(self.latency_s) / count, 2) if count else 0.0,
            "errors": self.errors,
            "wall_s": round(self.wall_s, 1),
            "correct_by_problem": {str(i): int(c) for i, c in sorted(self.by_problem.items())},
        }


def paired(new: dict[str, Any], old: dict[str, Any], z: float = 1.96) -> dict[str, Any]:
    """``new`` against ``old`` on the questions both answered (same
    questions, same seeds): the accuracy difference with the 95% interval
    of the mean paired difference, and the cost ratios."""
    a, b = new["correct_by_problem"], old["correct_by_problem"]
    both = sorted(set(a) & set(b), key=int)
    differences = [a[i] - b[i] for i in both]
    count = len(differences)
    mean = sum(differences) / count if count else 0.0
    variance = sum((d - mean) ** 2 for d in differences) / (count - 1) if count > 1 else 0.0
    margin = z * math.sqrt(variance / count) if count else 0.0

    def ratio(key: str) -> float | None:
        return round(new[key] / old[key], 3) if old.get(key) else None

    return {
        "new": new["run"], "old": old["run"], "questions": count,
        "difference": round(mean, 4), "ci95": [round(mean - margin, 4), round(mean + margin, 4)],
        "tokens_ratio": ratio("mean_tokens"), "latency_ratio": ratio("mean_latency_s"),
        "wall_ratio": ratio("wall_s"),
    }


def print_paired(comparisons: Sequence[dict[str, Any]]) -> None:
    print(f"{'new':24}{'old':18}{'n':>5}{'difference':>12}{'95% CI':>18}{'tokens':>8}"
          f"{'latency':>9}{'wall':>7}")
    for c in comparisons:
        ci = f"{100 * c['ci95'][0]:+.1f}..{100 * c['ci95'][1]:+.1f}"
        print(f"{c['new']:24}{c['old']:18}{c['questions']:>5}{100 * c['difference']:>+11.1f}p"
              f"{ci:>18}{c['tokens_ratio'] or 0:>7.2f}x{c['latency_ratio'] or 0:>8.2f}x"
              f"{c['wall_ratio'] or 0:>6.2f}x")


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval for a proportion that stays sensible near 0 and 1 (and
    for the few hundred problems a CPU run affords)."""
    if trials == 0:
        return 0.0, 0.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    margin = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - margin), min(1.0, centre + margin)


def _prediction(body: dict[str, Any]) -> tuple[str | None, list[str | None]]:
    ponder = body.get("ponder", {})
    content = body["choices"][0]["message"]["content"]
    answer = ponder.get("answer") or extract_answer(content)
    if ponder.get("votes") is None:  # a single-sample strategy: nothing was extracted per sample
        return answer, [answer]
    return answer, [c.get("answer") for c in ponder["candidates"]]


async def _ask(client: httpx.AsyncClient, model: str, run: RunSpec, problem: Problem,
               seed: int, max_tokens: int) -> dict[str, Any]:
    response = await client.post("/v1/chat/completions", json={
        "model": model,
        "messages": [{"role": "user", "content": problem.question}],
        "max_tokens": max_tokens,
        "temperature": run.temperature,
        "seed": seed,
        "include_candidates": True,
        **({} if run.strategy is None else {"strategy": run.strategy}),
        **({} if run.effort is None else {"reasoning_effort": run.effort}),
    })
    response.raise_for_status()
    return response.json()


async def measure(base_url: str, model: str, runs: Sequence[RunSpec],
                  problems: Sequence[Problem], concurrency: int, max_tokens: int,
                  api_key: str | None = None) -> list[RunResult]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    results = []
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(900),
                                 headers=headers) as client:
        for run in runs:
            result = RunResult(run.name, run.strategy or {"reasoning_effort": run.effort})
            gate = asyncio.Semaphore(concurrency)
            bar = tqdm(total=len(problems), desc=run.name, unit="problem", leave=False)

            async def one(index: int, problem: Problem, run: RunSpec = run,
                          result: RunResult = result, bar: tqdm = bar) -> None:
                async with gate:
                    asked = time.perf_counter()
                    try:
                        body = await _ask(client, model, run, problem, seed=index,
                                          max_tokens=run.max_tokens or max_tokens)
                    except httpx.HTTPError:
                        result.errors += 1
                        bar.update()
                        return
                answer, candidates = _prediction(body)
                result.correct.append(answer is not None and answers_equivalent(answer, problem.answer))
                result.by_problem[index] = result.correct[-1]
                result.any_correct.append(
                    any(c is not None and answers_equivalent(c, problem.answer) for c in candidates))
                usage = body["usage"]
                result.latency_s.append(time.perf_counter() - asked)
                result.tokens.append(usage["completion_tokens"])
                result.scoring_tokens.append(usage.get("scoring_tokens", 0))
                result.prompt_tokens.append(usage["prompt_tokens"])
                result.cached_tokens.append(usage["prompt_tokens_details"]["cached_tokens"])
                bar.update()

            start = time.perf_counter()
            await asyncio.gather(*(one(i, p) for i, p in enumerate(problems)))
            result.wall_s = time.perf_counter() - start
            bar.close()
            tqdm.write(json.dumps(result.summary()))
            results.append(result)
    return results


def print_table(summaries: Sequence[dict[str, Any]]) -> None:
    print(f"{'run':28}{'accuracy':>10}{'95% CI':>16}{'pass@n':>9}{'tokens':>9}"
          f"{'scoring':>9}{'cached':>8}{'latency':>9}{'wall s':>9}")
    for s in summaries:
        ci = f"{s['ci95'][0]:.2f}-{s['ci95'][1]:.2f}"
        print(f"{s['run']:28}{s['accuracy']:>10.3f}{ci:>16}{s['pass_at_n']:>9.3f}"
              f"{s['mean_tokens']:>9.0f}{s['mean_scoring_tokens']:>9.0f}"
              f"{s['cache_hit_rate']:>8.0%}{s['mean_latency_s']:>9.1f}{s['wall_s']:>9.0f}")


def plot(summaries: Sequence[dict[str, Any]], path: Path, title: str,
         by_latency: bool = True) -> None:
    """Accuracy against generated tokens and, with ``by_latency``, against
    each request's latency, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2 if by_latency else 1, figsize=(16 if by_latency else 10, 6),
                                sharey=True, squeeze=False)
    families: dict[str, list[dict[str, Any]]] = {}
    for s in summaries:
        families.setdefault(s["run"].split("@")[0], []).append(s)
    _panel(axes[0][0], families, "mean_tokens",
           "generated tokens per problem (log scale; families nudged apart)")
    if by_latency:
        _panel(axes[0][1], families, "mean_latency_s",
               "seconds per problem (request latency, log scale)")
    axes[0][0].set_ylabel("accuracy (%), 95% CI")
    figure.suptitle(title)
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _panel(axes: Any, families: dict[str, list[dict[str, Any]]], x_key: str, label: str) -> None:
    for rank, (family, points) in enumerate(families.items()):
        points = sorted(points, key=lambda s: s[x_key])
        # Runs over the same samples cost the same tokens: nudge each family
        # sideways by 1.5% so their error bars do not hide one another.
        xs = [max(p[x_key], 0.01) * 1.015**rank for p in points]
        ys = [100 * p["accuracy"] for p in points]
        errors = [[100 * (p["accuracy"] - p["ci95"][0]) for p in points],
                  [100 * (p["ci95"][1] - p["accuracy"]) for p in points]]
        line = axes.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=family)
        if family.startswith(("sc-", "scale-bon")):
            # The ceiling a verifier could reach over the same samples.
            axes.plot(xs, [100 * p["pass_at_n"] for p in points], linestyle="--", alpha=0.6,
                      color=line.lines[0].get_color(), label=f"{family} pass@n")
        for p, x, y in zip(points, xs, ys):
            if "@" in p["run"]:
                axes.annotate(p["run"].split("@")[1], (x, y), textcoords="offset points",
                              xytext=(4, 4), fontsize=7)
    axes.set_xscale("log")
    axes.set_xlabel(label)
    axes.grid(alpha=0.3)
