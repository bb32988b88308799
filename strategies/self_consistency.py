"""``self_consistency``: n samples in one fanned-out engine request, a
majority vote over their extracted answers (Wang et al., 2023).

Equivalent answers (``1/2``, ``0.5``) are one vote; samples without an
answer do not vote; ties go to the answer whose best sample has the highest
mean log-probability, then to the answer seen first. With ``early_stop`` the
vote ends as soon as the leader cannot be caught (or, with ``confidence``,
is that likely to stay ahead), and the samples still running are aborted.
DeepConf's options (``weighting``, ``keep``, ``online``; ``deepconf.py``) let
the model's own token confidence choose who votes and stop weak samples.

With ``first: m`` it is short-m@k (Hassid et al. 2025, "Don't Overthink
It"): of the n samples started together, only the first m to finish with an
answer vote, ties going to the answer whose sample finished shortest, and
the rest are aborted in the engine the moment the m-th finishes. Shorter
chains are more often right, and the wall time is the m-th shortest
sample's, not the longest's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from ponder.core.answers import AnswerGroup
from ponder.core.confidence import TOP_K, TraceConfidence
from ponder.core.generation import Generator, Prompt, Sample, Sampling
from ponder.strategies.base import Emitter, StrategyResult, Task
from ponder.strategies.deepconf import (
    ConfidenceVote,
    Online,
    Weighting,
    sample_online,
    vote_offline,
)
from ponder.strategies.fanout import FanOut, fan_out
from ponder.strategies.prompts import apply_prompt, splitter_for
from ponder.strategies.sampled import SampledAnswers, SampledConfig
from ponder.strategies.voting import VoteBook, decided, leader_confidence

MIN_SAMPLES_FOR_CONFIDENCE = 3


class Config(SampledConfig):
    name: Literal["self_consistency"] = "self_consistency"
    n: int = Field(8, ge=1, description="Samples to vote over.")
    early_stop: bool = Field(False, description="Stop once the leading answer cannot be caught.")
    confidence: float | None = Field(
        None, gt=0.5, lt=1,
        description="With early_stop: also stop once P(leader is the majority) reaches this "
        "(Adaptive-Consistency's Beta rule), after at least 3 samples.",
    )
    weighting: Weighting = Field(
        "count", description="`confidence`: each vote weighs its sample's DeepConf trace "
        "confidence (Fu et al. 2025) instead of 1.",
    )
    keep: float = Field(
        1.0, gt=0, le=1, description="DeepConf: only this share of the answered samples votes, "
        "the most confident (0.1 and 0.9 in the paper). Online: the share of the warm-up "
        "that sets the confidence bar.",
    )
    trace_confidence: TraceConfidence = Field(
        "lowest_group", description="DeepConf's trace confidence: `lowest_group`, `bottom_10` "
        "(mean of the lowest 10% of groups), `tail` (the last `window` tokens) or `mean`.",
    )
    window: int = Field(
        32, ge=1, le=8192, description="DeepConf: tokens per confidence group (a sliding window).",
    )
    online: bool = Field(
        False, description="DeepConf online: after `warmup` samples, stop any sample whose "
        "group confidence falls below the warm-up's bar in the engine at once, and stop "
        "sampling once the leading answer holds `consensus` of the vote.",
    )
    warmup: int = Field(4, ge=1, description="Online: samples drawn first to set the bar.")
    consensus: float = Field(
        0.95, gt=0.5, le=1, description="Online: the leading answer's share of the vote's "
        "weight that ends sampling.",
    )
    first: int | None = Field(
        None, ge=1, description="short-m@k (Hassid et al. 2025): only the first `first` "
        "samples to finish with an answer vote (ties to the shortest); the others are "
        "aborted in the engine as soon as they have.",
    )

    @field_validator("weighting", "keep", "online")
    @classmethod
    def _not_with_early_stop(cls, value: object, info: ValidationInfo) -> object:
        if info.data.get("early_stop") and value != cls.model_fields[info.field_name].default:
            raise ValueError(
                f"{info.field_name} is a DeepConf option, and early_stop counts every sample's "
                "vote: use one or the other (DeepConf stops early with `online`)."
            )
        return value

    @field_validator("warmup")
    @classmethod
    def _below_n(cls, warmup: int, info: ValidationInfo) -> int:
        n = info.data.get("n")
        if n is not None and warmup >= n and info.data.get("online"):
            raise ValueError(f"warmup ({warmup}) must be below n ({n}) when online.")
        return warmup

    @field_validator("first")
    @classmethod
    def _first_of_n(cls, first: int | None, info: ValidationInfo) -> int | None:
        n = info.data.get("n")
        if first is not None and n is not None and first > n:
            raise ValueError(f"first ({first}) cannot be more than n ({n}).")
        if first is not None and info.data.get("online"):
            raise ValueError(
                "first and DeepConf's online mode both decide when sampling ends (online by "
                "confidence and consensus): use one or the other. first combines with "
                "early_stop, confidence, weighting and keep."
            )
        return first

    @property
    def voters(self) -> int:
        """How many finished samples' answers the vote waits for."""
        return self.n if self.first is None else self.first

    @property
    def uses_confidence(self) -> bool:
        return self.online or self.weighting == "confidence" or self.keep < 1

    @property
    def max_samples(self) -> int:
        return self.n

    reuses_probe: ClassVar[bool] = True
    draws_anew_with: ClassVar[frozenset[str]] = frozenset({"first", "early_exit"})
    """The first to finish win: the probe's samples, finished before it
    started, would always be among them."""

    @classmethod
    def sized(cls, size: int) -> dict[str, Any]:
        return {"n": size}


async def run(
    task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None
) -> StrategyResult:
    style = cfg.prompt_style(task)
    answer_format = cfg.answer_format(task)
    prompt = apply_prompt(task.prompt, style)
    answers = SampledAnswers(splitter_for(style, task.splitter), answer_format, gen, task)
    book = VoteBook(answer_format)
    # Mean log-probability breaks ties; DeepConf reads the k best alternatives too.
    sampling = replace(task.sampling, logprobs=True,
                       top_logprobs=TOP_K if cfg.uses_confidence else task.sampling.top_logprobs)
    if emit is not None:
        among = "" if cfg.first is None else f"; the first {cfg.first} to answer vote"
        await emit.progress(f"Sampling {cfg.n} answers to vote on{among}.\n")
    vote: ConfidenceVote | None = None
    online: Online | None = None
    if cfg.uses_confidence:
        fanned, vote, online = await _with_confidence(gen, cfg, answers, book, emit, prompt,
                                                      sampling)
    else:
        fanned = await _by_count(gen, cfg, answers, book, emit, prompt, sampling)
    if cfg.first is not None:
        winner = shortest_winner(book, fanned.samples)
    else:
        winner = book.winner(fanned.samples, weighted=True)
    if winner is None:
        chosen = 0
    elif cfg.first is not None:
        chosen = min(winner.members, key=lambda m: (fanned.samples[m].num_tokens, m))
    elif vote is None:
        chosen = book.best_member(winner, fanned.samples)
    else:
        chosen = max(winner.members, key=lambda m: (vote.confidence(fanned.samples[m]), -m))
    result = answers.result(fanned.samples, chosen, winner.answer if winner else None)
    result.votes = book.counts()
    result.stopped_early = fanned.stopped_early
    if vote is not None:
        for candidate, sample in zip(result.candidates, fanned.samples):
            candidate.confidence = vote.confidence(sample)
    if online is not None:
        result.confidence_bar = online.bar
        result.stopped_low_confidence = len(online.stopped)
    if fanned.stopped_early:
        result.tokens_saved_estimate = answers.tokens_saved_estimate(fanned)
    if emit is not None:
        await answers.emit_final(result, emit)
    return result


async def _with_confidence(
    gen: Generator, cfg: Config, answers: SampledAnswers, book: VoteBook,
    emit: Emitter | None, prompt: Prompt, sampling: Sampling,
) -> tuple[FanOut, ConfidenceVote, Online | None]:
    """DeepConf's vote: offline over every sample, or online."""
    vote = ConfidenceVote(cfg.weighting, cfg.keep, cfg.trace_confidence, cfg.window)

    async def answer_of(index: int, sample: Sample) -> str | None:
        answer = answers.answer_of(index, sample)
        if emit is not None:
            await emit.progress(f"Sample {index + 1} answered {answer!r}.\n")
        return answer

    async def report(line: str) -> None:
        if emit is not None:
            await emit.progress(line)

    if cfg.online:
        online = await sample_online(gen, prompt, sampling, cfg.n, cfg.warmup, vote,
                                     cfg.consensus, book, answer_of, report)
        stopped = bool(online.stopped) or online.consensus_reached
        return FanOut(online.samples, stopped_early=stopped), vote, online

    answered = 0

    async def on_finished(index: int, sample: Sample) -> bool:
        nonlocal answered
        answered += await answer_of(index, sample) is not None
        return cfg.first is not None and answered >= cfg.first

    watching = emit is not None or cfg.first is not None
    fanned = await fan_out(gen, prompt, cfg.n, sampling, on_finished if watching else None)
    # Extraction and math-verify's comparisons are CPU work: off the event loop.
    # Samples cut off by `first` never finished: they do not vote.
    extracted = await asyncio.to_thread(lambda: [
        None if s.finish_reason == "abort" else answers.answer_of(i, s)
        for i, s in enumerate(fanned.samples)
    ])
    await asyncio.to_thread(vote_offline, book, fanned.samples, extracted, vote)
    return fanned, vote, None


async def _by_count(
    gen: Generator, cfg: Config, answers: SampledAnswers, book: VoteBook,
    emit: Emitter | None, prompt: Prompt, sampling: Sampling,
) -> FanOut:
    """The plain vote, tallied as samples finish when someone watches."""

    async def on_finished(index: int, sample: Sample) -> bool:
        # math-verify may take milliseconds per answer: off the event loop.
        await asyncio.to_thread(book.add, index, answers.answer_of(index, sample))
        voted = sum(c.count for c in book.classes)
        done = voted + answers.unanswered
        leader, runner_up = book.top_two()
        if emit is not None:
            tally = ", ".join(f"{a}: {c}" for a, c in book.counts().items()) or "none yet"
            await emit.progress(
                f"Sample {done}/{cfg.n} answered {answers.answers[index]!r}. Votes: {tally}.\n"
            )
        if voted >= cfg.voters:
            return True  # short-m@k: the vote is full
        if not cfg.early_stop:
            return False
        if decided(leader, runner_up, min(cfg.n - done, cfg.voters - voted)):
            return True
        return (
            cfg.confidence is not None
            and done >= MIN_SAMPLES_FOR_CONFIDENCE
            and leader_confidence(leader, runner_up) >= cfg.confidence
        )

    watching = emit is not None or cfg.early_stop or cfg.first is not None
    fanned = await fan_out(gen, prompt, cfg.n, sampling, on_finished if watching else None)
    if not watching:

        def tally() -> None:
            for index, sample in enumerate(fanned.samples):
                book.add(index, answers.answer_of(index, sample))

        await asyncio.to_thread(tally)
    return fanned


def shortest_winner(book: VoteBook, samples: Sequence[Sample]) -> AnswerGroup | None:
    """short-m@k's vote: the most votes (or weight), ties to the answer
    whose sample finished shortest, then to the answer seen first."""
    if not book.classes:
        return None
    order = {id(c): rank for rank, c in enumerate(book.classes)}
    return max(book.classes, key=lambda c: (
        c.weight, -min(samples[m].num_tokens for m in c.members), -order[id(c)]))
