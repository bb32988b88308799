"""``auto``: a few samples first, then as much compute as the question needs
(Snell et al. 2024's compute-optimal scaling).

The probe draws ``policy.probe.samples`` whole samples and scores them with
the combined verifier. Their signals (how well they agree, how sure the
model was, what the step checker said, how long they ran) give the
question's estimated difficulty, by the weights ``ponder calibrate`` fit. An
easy question is answered from the probe at once; otherwise the policy's
choice for the question's difficulty bin and the request's budget (``n``
sample-equivalents) runs, and a vote or best-of-N counts the probe's
samples as its first ones instead of drawing them again. A search starts
afresh: its steps are sampled with a stop at each step, which whole
samples cannot stand in for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field

from ponder.core.generation import Generator, RequestRejected, TokenLogprob
from ponder.core.policy import Bin, Policy, probe_signals
from ponder.core.steps import STEP_DELIMITER
from ponder.strategies import beam_search, best_of_n, dvts, particle_filtering, self_consistency
from ponder.strategies.answers import answers_equivalent
from ponder.strategies.base import Emitter, StrategyConfig, StrategyResult, Task, TreeNode
from ponder.strategies.reuse import Recorded
from ponder.strategies.sampled import SampledAnswers, SolutionsConfig

MAX_STEPS = 10
"""Of a search the policy picks: SearchConfig's default."""
_RUN = {
    "self_consistency": self_consistency.run, "best_of_n": best_of_n.run,
    "beam_search": beam_search.run, "dvts": dvts.run,
    "particle_filtering": particle_filtering.run,
}
POOLED = ("self_consistency", "best_of_n")
"""Choices that draw whole samples, as the probe does: they reuse its samples."""


class Config(SolutionsConfig):
    name: Literal["auto"] = "auto"
    n: int = Field(16, ge=1, le=256, description="The most compute to spend, in samples: the "
                   "probe's and the chosen strategy's together.")
    prm: str = Field("combined", description="The verifier the probe and best-of-N score with.")
    prompt: Literal["cot", "direct"] = Field(
        "direct", description="`direct` sends the messages as they are (what the shipped "
        "policy was measured with); `cot` adds the step-by-step instruction.")
    step_delimiter: str = Field(
        STEP_DELIMITER, min_length=1, max_length=32,
        description="Where a step ends, for a search the policy picks (default: the server's).")

    @property
    def max_samples(self) -> int:
        return self.n * MAX_STEPS


def search_expand(n: int) -> int:
    """Continuations per line and step of a search with ``n`` per round: 4
    (search-and-learn's), 2 under 8, so that a small search keeps two lines."""
    return 4 if n >= 8 else 2 if n >= 2 else 1


def choice_config(choice: str, base: Config | None = None) -> StrategyConfig:
    """The configuration a policy choice such as ``beam_search@16`` names:
    the one definition ``ponder calibrate`` measures and ``auto`` runs.
    Searches continue :func:`search_expand` lines a step, best-of-N scores
    with the combined verifier. Prompt, answer format and step delimiter are
    ``base``'s (auto's, with the server's defaults), else left unset for the
    server to fill."""
    name, _, size = choice.partition("@")
    n = int(size)
    expand = search_expand(n)
    shared: dict[str, Any] = {} if base is None else {"prompt": base.prompt,
                                                      "answer": base.answer}
    search = shared if base is None else {**shared, "step_delimiter": base.step_delimiter}
    if name == "self_consistency":
        return self_consistency.Config(n=n, **shared)
    if name == "best_of_n":
        return best_of_n.Config(n=n, prm=base.prm if base else "combined", **shared)
    if name == "beam_search":
        return beam_search.Config(beam_width=max(1, n // expand), expand=expand, **search)
    if name == "dvts":
        return dvts.Config(n=n - n % expand, expand=expand, **search)
    if name == "particle_filtering":
        return particle_filtering.Config(n=n, **search)
    raise ValueError(f"unknown strategy {name!r} in the policy")


async def run(
    task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None
) -> StrategyResult:
    policy = _policy(task)
    recorded = Recorded(gen)
    probe_size = min(policy.probe.samples, cfg.n)
    if emit is not None:
        await emit.progress(f"Probe: {probe_size} samples, scored by {cfg.prm}.\n")
    probe = await best_of_n.run(task, recorded, best_of_n.Config(
        n=probe_size, prm=cfg.prm, prompt=cfg.prompt, answer=cfg.answer), _quiet(emit))
    answer_format = cfg.answer_format(task)
    # math-verify's comparisons are CPU work: off the event loop.
    signals = await asyncio.to_thread(
        probe_signals,
        [c.answer for c in probe.candidates], [c.verifiers or {} for c in probe.candidates],
        [c.tokens for c in probe.candidates],
        lambda a, b: answers_equivalent(a, b, answer_format))
    difficulty = policy.difficulty_of(signals)
    index, chosen_bin = policy.bin_of(difficulty)
    choice, why = _decide(policy, chosen_bin, difficulty, cfg.n, probe_size)
    decision = {"policy": policy.source, "signals": {k: round(v, 3) for k, v in signals.items()},
                "difficulty": round(difficulty, 3), "bin": index, "bins": len(policy.bins),
                "choice": choice or f"probe@{probe_size}", "why": why}
    if emit is not None:
        await emit.progress(f"Difficulty {difficulty:.2f} (bin {index + 1} of "
                            f"{len(policy.bins)}): {decision['choice']}, {why}.\n")
    if choice is None or probe.budget_exhausted:
        result = probe
        if emit is not None:
            await SampledAnswers.emit_final(result, emit)
    else:
        config = choice_config(choice, cfg)
        result = await _RUN[choice.partition("@")[0]](task, recorded, config, emit)
        _keep_probe(result, probe)
    decision["probe_samples_reused"] = recorded.reused
    result.decision = decision
    return result


def _policy(task: Task) -> Policy:
    if task.policy is None:
        raise RequestRejected("strategy auto needs a calibrated policy, and this server "
                              "runs without one (see `ponder calibrate`).", param="strategy")
    return task.policy


def _decide(policy: Policy, chosen_bin: Bin, difficulty: float, budget: int,
            probe_size: int) -> tuple[str | None, str]:
    """The strategy to escalate to, or None to answer from the probe."""
    if difficulty < policy.probe.answer_below:
        return None, f"below {policy.probe.answer_below}: the probe's answer is trusted"
    choice = chosen_bin.choice_for(budget)
    if choice is None:
        return None, f"the budget of {budget} covers no choice beyond the probe"
    name, _, size = choice.partition("@")
    if name in POOLED and int(size) <= probe_size:
        return None, f"the policy's choice ({choice}) is no more than the probe drew"
    return choice, f"the policy's choice for this bin at a budget of {budget}"


def _keep_probe(result: StrategyResult, probe: StrategyResult) -> None:
    """A search draws anew: the probe's samples stay on show beside its
    candidates (a pooled choice already holds them)."""
    if result.tree is not None:
        result.candidates = [*probe.candidates, *result.candidates]
        if result.scores is not None and probe.scores is not None:
            result.scores = [*probe.scores, *result.scores]  # one per candidate, as they stand
        if result.selected is not None:
            result.selected += len(probe.candidates)


class _Quiet:
    """The probe's emitter: its progress streams, but its answer is held
    until ``auto`` knows it is the answer."""

    def __init__(self, emit: Emitter) -> None:
        self._emit = emit

    async def reasoning(self, text: str) -> None:
        """The probe's chosen sample is not yet the answer's reasoning."""

    async def content(self, text: str, token_ids: Sequence[int] = (),
                      logprobs: Sequence[TokenLogprob] | None = None) -> None:
        """Nor is its text the answer yet."""

    async def progress(self, text: str) -> None:
        await self._emit.progress(text)

    async def tree(self, nodes: list[TreeNode]) -> None:
        await self._emit.tree(nodes)


def _quiet(emit: Emitter | None) -> Emitter | None:
    return None if emit is None else _Quiet(emit)
