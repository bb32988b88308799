"""``best_of_n``: n samples in one fanned-out request, every one scored step
by step by a process reward model in one batch; the answer of the best
solution, or (``weighted_vote``) the answer whose solutions carry the most
PRM score in total.

On a small model this is where test-time compute pays: the right answer is
among n samples far more often than the majority or greedy finds it, and a
verifier can pick it out.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Literal

from pydantic import Field

from ponder.prm.aggregate import Aggregate, aggregate
from ponder.prm.base import split_steps
from ponder.strategies.answers import AnswerFormat
from ponder.strategies.base import (
    Emitter,
    Generator,
    Sample,
    StrategyConfig,
    StrategyResult,
    Task,
)
from ponder.strategies.fanout import fan_out
from ponder.strategies.prompts import PromptStyle, apply_prompt, splitter_for
from ponder.strategies.sampled import SampledAnswers
from ponder.strategies.voting import VoteBook


class Config(StrategyConfig):
    name: Literal["best_of_n"] = "best_of_n"
    n: int = Field(8, ge=1, description="Samples to choose from.")
    prm: str | None = Field(None, description="Process reward model (default: the server's).")
    aggregate: Aggregate = Field("min", description="Step scores to one solution score.")
    weighted_vote: bool = Field(
        False, description="Sum solution scores per equivalent answer instead of taking the best."
    )
    prompt: PromptStyle = Field("cot", description="`cot` or `direct`, as for self_consistency.")
    answer: AnswerFormat = Field("auto", description="How to extract each sample's answer.")


async def run(
    task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None
) -> StrategyResult:
    prm_name, prm = task.verifiers.get(cfg.prm)
    answers = SampledAnswers(splitter_for(cfg.prompt, task.splitter), cfg.answer, gen)
    sampling = replace(task.sampling, logprobs=True)  # mean logprob breaks ties
    if emit is not None:
        await emit.progress(f"Sampling {cfg.n} solutions for {prm_name} to score.\n")

    async def on_finished(index: int, sample: Sample) -> bool:
        assert emit is not None
        await emit.progress(f"Solution {index + 1} answered {answers.answer_of(index, sample)!r}.\n")
        return False

    fanned = await fan_out(gen, apply_prompt(task.prompt, cfg.prompt), cfg.n, sampling,
                           on_finished if emit is not None else None)
    samples = fanned.samples
    scored = await prm.score(task.question, [split_steps(s.text) for s in samples])
    scores = [aggregate(steps, cfg.aggregate) for steps in scored.scores]

    book = VoteBook(cfg.answer)

    def tally() -> None:
        for index, sample in enumerate(samples):
            book.add(index, answers.answer_of(index, sample), weight=scores[index])

    await asyncio.to_thread(tally)  # math-verify may take milliseconds per answer
    def best(indices: list[int]) -> int:
        return max(indices, key=lambda m: (scores[m], samples[m].mean_logprob, -m))

    winner = book.winner(samples, weighted=True) if cfg.weighted_vote else None
    chosen = best(winner.members if winner else list(range(len(samples))))
    answer = winner.answer if winner else answers.answers.get(chosen)
    result = answers.result(fanned, chosen, answer)
    result.usage.scoring_tokens = scored.tokens
    result.votes = book.counts()
    result.scores = scores
    for candidate, score, steps in zip(result.candidates, scores, scored.scores):
        candidate.score, candidate.step_scores = score, steps
    result.extra.update(prm=prm_name, selected_index=chosen)
    if emit is not None:
        await emit.progress(
            "Scores: " + ", ".join(
                f"{answers.answers.get(i)!r} {score:.2f}" for i, score in enumerate(scores)
            ) + ".\n"
        )
        await answers.emit_final(result, emit)
    return result
