"""``best_of_n``: n samples in one fanned-out request, every one scored step
by step by a process reward model in one batch; the answer of the best
solution (the vote among equally scored ones breaks ties), or
(``weighted_vote``) the answer whose solutions carry the most PRM score in
total.

On a small model this is where test-time compute pays: the right answer is
among n samples far more often than the majority or greedy finds it, and a
verifier can pick it out.

With ``prune_every`` it is speculative rejection (Sun et al. 2024;
``pruning.py``): the scorer reads the partial samples every so many tokens
and the lowest-scored are stopped in the engine, so most of the n never run
to their end.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, replace
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from ponder.core.aggregate import Aggregate, aggregate
from ponder.core.generation import Generator, Prompt, Sample, Sampling
from ponder.core.scoring import preferred_aggregate
from ponder.core.steps import DEFAULT_STEPS
from ponder.strategies.base import Emitter, StrategyResult, Task
from ponder.strategies.fanout import fan_out
from ponder.strategies.prompts import apply_prompt, splitter_for
from ponder.strategies.pruning import PrunedRun, Pruning, sample_pruned
from ponder.strategies.sampled import SampledAnswers, SampledConfig
from ponder.strategies.selection import select
from ponder.strategies.voting import VoteBook

VOTE_FLOOR = 3
"""Samples a pruned weighted vote keeps to the end: the fewest among which
one answer can outvote another without a tie."""
PRUNED = -1.0
"""What a pruned sample scores in the final choice: below any real score."""


class Config(SampledConfig):
    name: Literal["best_of_n"] = "best_of_n"
    n: int = Field(8, ge=1, description="Samples to choose from.")
    prm: str | None = Field(
        None, description="Step scorer: a configured PRM, or a reward-free one such as "
        "`mean-logprob` (default: the server's PRM)."
    )
    aggregate: Aggregate | None = Field(
        None, description="Step scores to one solution score (default: min; last for the "
        "combined scorers, whose last step weighs the whole solution)."
    )
    weighted_vote: bool = Field(
        False, description="Sum solution scores per equivalent answer instead of taking the best."
    )
    prune_every: int | None = Field(
        None, ge=1, description="Speculative rejection (Sun et al. 2024): every this many "
        "tokens the scorer scores the partial samples, and the lowest-scored are stopped in "
        "the engine.",
    )
    prune_keep: float = Field(
        0.5, gt=0, lt=1, description="With prune_every: the share of the running samples kept "
        "at each checkpoint (never fewer than the final candidates: 1, or 3 with weighted_vote).",
    )

    @field_validator("prune_keep")
    @classmethod
    def _with_prune_every(cls, keep: float, info: ValidationInfo) -> float:
        if info.data.get("prune_every") is None:
            raise ValueError("prune_keep is the share kept at each checkpoint: set prune_every too.")
        return keep

    @property
    def pruning(self) -> Pruning | None:
        if self.prune_every is None:
            return None
        floor = min(self.n, VOTE_FLOOR if self.weighted_vote else 1)
        return Pruning(self.prune_every, self.prune_keep, floor)

    @property
    def max_samples(self) -> int:
        return self.n

    reuses_probe: ClassVar[bool] = True
    draws_anew_with: ClassVar[frozenset[str]] = frozenset({"prune_every", "early_exit"})
    """Pruned partway by their partial scores: whole samples drawn before it
    would skip every checkpoint."""

    @classmethod
    def sized(cls, size: int) -> dict[str, Any]:
        return {"n": size}


async def run(
    task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None
) -> StrategyResult:
    prm_name, prm = task.verifiers.get(cfg.prm)
    style = cfg.prompt_style(task)
    answer_format = cfg.answer_format(task)
    answers = SampledAnswers(splitter_for(style, task.splitter), answer_format, gen, task)
    # Mean log-probability breaks ties; a confidence scorer may want more.
    sampling = replace(
        task.sampling, logprobs=True,
        top_logprobs=max(task.sampling.top_logprobs, prm.reads_logprobs or 0),
    )
    if emit is not None:
        await emit.progress(f"Sampling {cfg.n} solutions for {prm_name} to score.\n")

    how = cfg.aggregate or preferred_aggregate(prm)
    prompt = apply_prompt(task.prompt, style)
    pruning = cfg.pruning
    if pruning is None:
        samples = await _all_samples(gen, prompt, cfg.n, sampling, answers, emit)
        run_pruned = PrunedRun(samples, [() for _ in samples])
    else:
        async def report(line: str) -> None:
            if emit is not None:
                await emit.progress(line)

        run_pruned = await sample_pruned(gen, prompt, sampling, cfg.n, pruning, prm,
                                         task.question, how, report)
        samples = run_pruned.samples
    alive = [i for i in range(len(samples)) if i not in run_pruned.pruned_at]
    # The scorer may judge each answer against its work; extracting them is
    # CPU work, as are math-verify's comparisons below: off the event loop.
    extracted = await asyncio.to_thread(lambda: [
        answers.answer_of(i, s) if i in alive else None for i, s in enumerate(samples)])
    with_logprobs = prm.reads_logprobs is not None
    solutions = []
    for index in alive:
        sample = samples[index]
        solution = DEFAULT_STEPS.solution(sample.text, sample.logprobs if with_logprobs else None)
        # Steps scored at a checkpoint are not scored again; the last one is,
        # now that the answer it leads to is known.
        known = run_pruned.known[index][: max(0, len(solution.steps) - 1)]
        solutions.append(replace(solution, answer=extracted[index], known=known,
                                 answer_format=answer_format))
    scored = await prm.score(task.question, solutions)
    step_scores = {**{i: list(run_pruned.known[i]) for i in run_pruned.pruned_at},
                   **dict(zip(alive, scored.scores))}
    scores = [run_pruned.partial_scores[i] if i in run_pruned.pruned_at
              else aggregate(step_scores[i], how) for i in range(len(samples))]

    book = VoteBook(answer_format)

    def tally() -> None:
        for index, answer in enumerate(extracted):
            book.add(index, answer, weight=scores[index])

    await asyncio.to_thread(tally)
    # A pruned sample never comes back: it has no answer, and scores below any.
    chosen, winner = select(
        book, [scores[i] if i in alive else PRUNED for i in range(len(samples))],
        [s.mean_logprob for s in samples], weighted_vote=cfg.weighted_vote)
    result = answers.result(samples, chosen, winner.answer if winner else None)
    result.votes = book.counts()
    result.scores = scores
    labels = dict(zip(alive, scored.labels or [None] * len(alive)))
    parts = dict(zip(alive, scored.parts or [None] * len(alive)))
    for index, candidate in enumerate(result.candidates):
        candidate.score, candidate.step_scores = scores[index], step_scores[index]
        candidate.step_labels, candidate.verifiers = labels.get(index), parts.get(index)
        candidate.pruned_at = run_pruned.pruned_at.get(index)
    if pruning is not None:
        result.checkpoints = [asdict(c) for c in run_pruned.checkpoints]
        result.stopped_early = bool(run_pruned.pruned_at)
    result.scorer, result.selected = prm_name, chosen
    if emit is not None:
        await emit.progress(
            "Scores: " + ", ".join(
                f"{answers.answers.get(i)!r} {scores[i]:.2f}" for i in alive
            ) + ".\n"
        )
        await answers.emit_final(result, emit)
    return result


async def _all_samples(
    gen: Generator, prompt: Prompt, n: int, sampling: Sampling, answers: SampledAnswers,
    emit: Emitter | None,
) -> list[Sample]:
    """Every sample to its end, in one fanned-out request."""

    async def on_finished(index: int, sample: Sample) -> bool:
        assert emit is not None
        await emit.progress(f"Solution {index + 1} answered {answers.answer_of(index, sample)!r}.\n")
        return False

    fanned = await fan_out(gen, prompt, n, sampling, on_finished if emit is not None else None)
    return fanned.samples
