"""``auto``: a few samples first, then as much compute as the question needs
(Snell et al. 2024's compute-optimal scaling).

The probe draws ``policy.probe.samples`` whole samples and scores them with
the combined verifier. Their signals (how well they agree, how sure the
model was, what the step checker said, how long they ran) give the
question's estimated difficulty, by the weights ``ponder calibrate`` fit,
and :func:`ponder.core.policy.decide` (the rule calibration replays) picks
what runs next within the request's budget of ``n`` samples, the probe's
included. A vote or best-of-N counts the probe's samples as its first ones
instead of drawing them again; a search starts afresh, since its steps are
sampled with a stop at each step, which whole samples cannot stand in for.

With no policy fit for the served model, the model-neutral rule decides:
the probe's answer when its samples all agree, else best-of-N over the
whole budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from ponder.core.generation import Generator, TokenLogprob
from ponder.core.policy import NEUTRAL_PROBE_SAMPLES, Choice, decide, probe_signals, shown_source
from ponder.core.steps import STEP_DELIMITER
from ponder.strategies import best_of_n
from ponder.strategies.base import (
    AutoDecision,
    Emitter,
    StrategyResult,
    Task,
    TreeNode,
)
from ponder.strategies.registry import STRATEGIES, choice_config
from ponder.strategies.reuse import Recorded
from ponder.strategies.sampled import SampledAnswers, SolutionsConfig
from ponder.strategies.search import SearchConfig

NEUTRAL_RULE = "the model-neutral rule (no policy fit for the served model)"


class Config(SolutionsConfig):
    name: Literal["auto"] = "auto"
    n: int = Field(16, ge=1, le=256, description="The most compute to spend, in samples: the "
                   "probe's and the chosen strategy's together. A choice that stops samples "
                   "early (short-m@k, pruning) counts the samples' worth of tokens calibration "
                   "measured it to spend, not the samples it starts.")
    prm: str = Field("combined", description="The verifier the probe scores with, and a "
                     "best-of-N that reuses the probe's samples.")
    prompt: Literal["cot", "direct"] = Field(
        "direct", description="`direct` sends the messages as they are (what the shipped "
        "policy was measured with); `cot` adds the step-by-step instruction.")
    step_delimiter: str = Field(
        STEP_DELIMITER, min_length=1, max_length=32,
        description="Where a step ends, for a search the policy picks (default: the server's).")

    @property
    def max_samples(self) -> int:
        """A search it chooses draws at most ``n`` a round, for as many
        rounds as a search takes by default."""
        return self.n * SearchConfig.model_fields["max_steps"].default


async def run(
    task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None
) -> StrategyResult:
    policy = task.policy
    recorded = Recorded(gen)
    probe_size = min(policy.probe.samples if policy else NEUTRAL_PROBE_SAMPLES, cfg.n)
    if emit is not None:
        await emit.progress(f"Probe: {probe_size} samples, scored by {cfg.prm}.\n")
    with recorded.recording():
        probe = await best_of_n.run(task, recorded, best_of_n.Config(
            n=probe_size, prm=cfg.prm, prompt=cfg.prompt, answer=cfg.answer), _quiet(emit))
    # math-verify's comparisons are CPU work: off the event loop.
    signals = await asyncio.to_thread(
        probe_signals,
        [c.answer for c in probe.candidates], [c.verifiers or {} for c in probe.candidates],
        [c.tokens for c in probe.candidates], cfg.answer_format(task))
    decision = decide(policy, signals, cfg.n, probe_size)
    record = AutoDecision(
        policy=NEUTRAL_RULE if policy is None else shown_source(policy.source),
        signals={k: round(v, 3) for k, v in signals.items()},
        difficulty=None if decision.difficulty is None else round(decision.difficulty, 3),
        bin=decision.bin, bins=None if policy is None else len(policy.bins),
        choice=str(decision.choice or f"probe@{probe_size}"), why=decision.why)
    if emit is not None:
        await emit.progress(_said(record))
    if decision.choice is None or probe.budget_exhausted:
        result = probe
        if emit is not None:
            await SampledAnswers.emit_final(result, emit)
    else:
        # A choice that draws its samples its own way must not be handed the probe's.
        drawn_by = recorded if decision.choice.reuses_probe else gen
        result = await _escalate(task, drawn_by, cfg, decision.choice, emit)
        _keep_probe(result, probe)
    record.probe_samples_reused = recorded.reused
    result.decision = record
    return result


async def _escalate(task: Task, gen: Generator, cfg: Config, choice: Choice,
                    emit: Emitter | None) -> StrategyResult:
    shared = {"prompt": cfg.prompt, "answer": cfg.answer, "step_delimiter": cfg.step_delimiter,
              "prm": cfg.prm}
    return await STRATEGIES[choice.strategy].run(task, gen, choice_config(choice, shared), emit)


def _said(record: AutoDecision) -> str:
    if record.difficulty is None:
        return f"{record.choice}: {record.why}.\n"
    return (f"Difficulty {record.difficulty:.2f} (bin {(record.bin or 0) + 1} of {record.bins}): "
            f"{record.choice}, {record.why}.\n")


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
