"""``self_consistency``: n samples in one fanned-out engine request, a
majority vote over their extracted answers (Wang et al., 2023).

Equivalent answers (``1/2``, ``0.5``) are one vote; samples without an
answer do not vote; ties go to the answer whose best sample has the highest
mean log-probability, then to the answer seen first. With ``early_stop`` the
vote ends as soon as the leader cannot be caught (or, with ``confidence``,
is that likely to stay ahead), and the samples still running are aborted.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Literal

from pydantic import Field

from ponder.core.generation import Generator, Sample
from ponder.strategies.answers import AnswerFormat
from ponder.strategies.base import Emitter, StrategyConfig, StrategyResult, Task
from ponder.strategies.fanout import fan_out
from ponder.strategies.prompts import PromptStyle, apply_prompt, splitter_for
from ponder.strategies.sampled import SampledAnswers
from ponder.strategies.voting import VoteBook, decided, leader_confidence

MIN_SAMPLES_FOR_CONFIDENCE = 3


class Config(StrategyConfig):
    name: Literal["self_consistency"] = "self_consistency"
    n: int = Field(8, ge=1, description="Samples to vote over.")
    prompt: PromptStyle = Field("cot", description="`cot` adds the step-by-step instruction; "
                                "`direct` sends the messages as they are.")
    answer: AnswerFormat = Field("auto", description="How to extract each sample's answer.")
    early_stop: bool = Field(False, description="Stop once the leading answer cannot be caught.")
    confidence: float | None = Field(
        None, gt=0.5, lt=1,
        description="With early_stop: also stop once P(leader is the majority) reaches this "
        "(Adaptive-Consistency's Beta rule), after at least 3 samples.",
    )

    @property
    def max_samples(self) -> int:
        return self.n


async def run(
    task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None
) -> StrategyResult:
    prompt = apply_prompt(task.prompt, cfg.prompt)
    answers = SampledAnswers(splitter_for(cfg.prompt, task.splitter), cfg.answer, gen)
    book = VoteBook(cfg.answer)
    sampling = replace(task.sampling, logprobs=True)  # mean logprob breaks ties
    if emit is not None:
        await emit.progress(f"Sampling {cfg.n} answers to vote on.\n")

    async def on_finished(index: int, sample: Sample) -> bool:
        # math-verify may take milliseconds per answer: off the event loop.
        await asyncio.to_thread(book.add, index, answers.answer_of(index, sample))
        done = sum(c.count for c in book.classes) + answers.unanswered
        leader, runner_up = book.top_two()
        if emit is not None:
            tally = ", ".join(f"{a}: {c}" for a, c in book.counts().items()) or "none yet"
            await emit.progress(
                f"Sample {done}/{cfg.n} answered {answers.answers[index]!r}. Votes: {tally}.\n"
            )
        if not cfg.early_stop:
            return False
        if decided(leader, runner_up, cfg.n - done):
            return True
        return (
            cfg.confidence is not None
            and done >= MIN_SAMPLES_FOR_CONFIDENCE
            and leader_confidence(leader, runner_up) >= cfg.confidence
        )

    watching = emit is not None or cfg.early_stop
    fanned = await fan_out(gen, prompt, cfg.n, sampling, on_finished if watching else None)
    if not watching:

        def tally() -> None:
            for index, sample in enumerate(fanned.samples):
                book.add(index, answers.answer_of(index, sample))

        await asyncio.to_thread(tally)
    winner = book.winner(fanned.samples)
    chosen = book.best_member(winner, fanned.samples) if winner else 0
    result = answers.result(fanned.samples, chosen, winner.answer if winner else None)
    result.votes = book.counts()
    result.stopped_early = fanned.stopped_early
    if fanned.stopped_early:
        result.tokens_saved_estimate = answers.tokens_saved_estimate(fanned)
    if emit is not None:
        await answers.emit_final(result, emit)
    return result
