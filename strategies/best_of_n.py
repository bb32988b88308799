"""``best_of_n``: n samples in one fanned-out request, every one scored step
by step by a process reward model in one batch; the answer of the best
solution (the vote among equally scored ones breaks ties), or
(``weighted_vote``) the answer whose solutions carry the most PRM score in
total.

On a small model this is where test-time compute pays: the right answer is
among n samples far more often than the majority or greedy finds it, and a
verifier can pick it out.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Literal

from pydantic import Field

from ponder.core.aggregate import Aggregate, aggregate
from ponder.core.generation import Generator, Sample
from ponder.core.scoring import preferred_aggregate
from ponder.core.steps import DEFAULT_STEPS
from ponder.strategies.base import Emitter, StrategyResult, Task
from ponder.strategies.fanout import fan_out
from ponder.strategies.prompts import apply_prompt, splitter_for
from ponder.strategies.sampled import SampledAnswers, SolutionsConfig
from ponder.strategies.selection import select
from ponder.strategies.voting import VoteBook


class Config(SolutionsConfig):
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

    @property
    def max_samples(self) -> int:
        return self.n


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

    async def on_finished(index: int, sample: Sample) -> bool:
        assert emit is not None
        await emit.progress(f"Solution {index + 1} answered {answers.answer_of(index, sample)!r}.\n")
        return False

    fanned = await fan_out(gen, apply_prompt(task.prompt, style), cfg.n, sampling,
                           on_finished if emit is not None else None)
    samples = fanned.samples
    # The scorer may judge each answer against its work; extracting them is
    # CPU work, as are math-verify's comparisons below: off the event loop.
    extracted = await asyncio.to_thread(
        lambda: [answers.answer_of(i, s) for i, s in enumerate(samples)])
    with_logprobs = prm.reads_logprobs is not None
    solutions = [
        replace(DEFAULT_STEPS.solution(s.text, s.logprobs if with_logprobs else None), answer=a)
        for s, a in zip(samples, extracted)
    ]
    scored = await prm.score(task.question, solutions)
    how = cfg.aggregate or preferred_aggregate(prm)
    scores = [aggregate(steps, how) for steps in scored.scores]

    book = VoteBook(answer_format)

    def tally() -> None:
        for index, answer in enumerate(extracted):
            book.add(index, answer, weight=scores[index])

    await asyncio.to_thread(tally)
    chosen, winner = select(book, scores, [s.mean_logprob for s in samples],
                            weighted_vote=cfg.weighted_vote)
    result = answers.result(samples, chosen, winner.answer if winner else None)
    result.votes = book.counts()
    result.scores = scores
    labels = scored.labels or [None] * len(samples)
    parts = scored.parts or [None] * len(samples)
    for candidate, score, steps, named, said in zip(
            result.candidates, scores, scored.scores, labels, parts):
        candidate.score, candidate.step_scores, candidate.step_labels = score, steps, named
        candidate.verifiers = said
    result.scorer, result.selected = prm_name, chosen
    if emit is not None:
        await emit.progress(
            "Scores: " + ", ".join(
                f"{answers.answers.get(i)!r} {score:.2f}" for i, score in enumerate(scores)
            ) + ".\n"
        )
        await answers.emit_final(result, emit)
    return result
