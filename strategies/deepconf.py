"""DeepConf (Fu et al. 2025) for self-consistency: the model's own token
confidence (``core/confidence.py``) decides which samples vote, with what
weight, and when to stop sampling.

* Offline: every sample is drawn; only the share ``keep`` of the most
  confident answered samples votes, each with its trace confidence as its
  weight when ``weighting`` is ``confidence``.
* Online: ``warmup`` samples are drawn first, and the bar is set where only
  the share ``keep`` of them reach (the (1 - keep) quantile of their lowest
  group confidences). The other samples then run as separate engine
  requests (``traces.py``): one whose group confidence falls below the bar
  is stopped in the engine at once and does not vote, and sampling ends
  when the leading answer holds ``consensus`` of the vote's weight (once at
  least ``warmup`` samples have voted: one or two agreeing votes are no
  consensus). Of the warm-up, only the samples that reach the bar vote.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ponder.core.confidence import TraceConfidence, token_confidence, trace_confidence
from ponder.core.generation import Generator, Prompt, Sample, SampleCollector, Sampling
from ponder.strategies.fanout import fan_out
from ponder.strategies.traces import OnEvent, Traces
from ponder.strategies.voting import VoteBook

Weighting = Literal["count", "confidence"]


@dataclass(frozen=True)
class ConfidenceVote:
    """Which samples vote and how much (self-consistency's DeepConf options)."""

    weighting: Weighting
    keep: float
    measure: TraceConfidence
    window: int

    def confidence(self, sample: Sample) -> float:
        return trace_confidence(sample.logprobs or (), self.measure, self.window)

    def weight(self, sample: Sample) -> float:
        return self.confidence(sample) if self.weighting == "confidence" else 1.0


def vote_offline(
    book: VoteBook, samples: Sequence[Sample], answers: Sequence[str | None], vote: ConfidenceVote
) -> None:
    """The most confident ``keep`` of the answered samples vote into ``book``
    (at least one), weighted as ``vote`` says."""
    answered = [i for i, answer in enumerate(answers) if answer is not None]
    answered.sort(key=lambda i: (-vote.confidence(samples[i]), i))
    for index in answered[: max(1, math.ceil(vote.keep * len(answered)))]:
        book.add(index, answers[index], weight=vote.weight(samples[index]))


@dataclass
class Online:
    """What an online run did, beside its samples."""

    samples: list[Sample]
    bar: float
    below_bar: list[int] = field(default_factory=list)
    """Samples whose confidence fell below the bar: none of them votes."""
    consensus_reached: bool = False

    @property
    def stopped(self) -> list[int]:
        """The samples below the bar that the engine had not finished when
        they were stopped; a sample can end on its own on the very delta that
        falls below the bar, or before its stop reaches the engine."""
        return [i for i in self.below_bar if self.samples[i].finish_reason == "abort"]


async def sample_online(
    gen: Generator, prompt: Prompt, sampling: Sampling, n: int, warmup: int,
    vote: ConfidenceVote, consensus: float, book: VoteBook,
    answer_of: Callable[[int, Sample], Awaitable[str | None]], report: OnEvent,
) -> Online:
    """Samples ``0..n-1`` (warm-up first, as the first children of one
    request), voting into ``book`` as they finish."""
    warm = (await fan_out(gen, prompt, warmup, sampling)).samples
    lowest = [trace_confidence(s.logprobs or (), "lowest_group", vote.window) for s in warm]
    bar = quantile(lowest, 1 - vote.keep)
    await report(f"Warm-up of {warmup}: the confidence bar is {bar:.3f} "
                 f"(the {vote.keep:.0%} most confident reach it).\n")
    for index, sample in enumerate(warm):
        answer = await answer_of(index, sample)
        if lowest[index] >= bar:
            await _cast(book, index, answer, vote.weight(sample))
    run = Online(warm, bar)
    collected = SampleCollector(n)
    groups = {i: Group(vote.window) for i in range(warmup, n)}
    async with Traces(gen, prompt, sampling, range(warmup, n)) as traces:
        async for delta in traces:
            index = delta.index
            sample = collected.add(delta)
            group = groups[index]
            if index in run.below_bar or run.consensus_reached:
                continue  # tokens it made before it was stopped: counted, not judged
            if any(group.add(token_confidence(t)) < bar for t in delta.logprobs or ()):
                run.below_bar.append(index)  # like a weak warm-up sample, it does not vote
                if sample is None:
                    traces.stop(index)
                    await report(f"Sample {index + 1} stopped: its confidence fell below "
                                 "the bar.\n")
                else:
                    await report(f"Sample {index + 1} ended below the bar: no vote.\n")
            elif sample is not None:
                answer = await answer_of(index, sample)
                await _cast(book, index, answer, vote.weight(sample))
                share = leading_share(book)
                await report(f"Sample {index + 1} answered {answer!r}; "
                             f"the leading answer holds {share:.0%} of the vote.\n")
                # As much evidence as the warm-up drew, before a consensus counts.
                if share >= consensus and sum(c.count for c in book.classes) >= warmup:
                    run.consensus_reached = True
                    for other in groups:
                        traces.stop(other)
    run.samples = warm + [collected.sample(i) for i in range(warmup, n)]
    return run


async def _cast(book: VoteBook, index: int, answer: str | None, weight: float) -> None:
    """math-verify may take milliseconds per comparison: off the event loop."""
    await asyncio.to_thread(book.add, index, answer, weight)


class Group:
    """The mean confidence of a trace's last ``window`` tokens, as they come;
    NaN until the window is full (a group is a whole window)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self._values: deque[float] = deque(maxlen=window)
        self._sum = 0.0

    def add(self, confidence: float) -> float:
        if len(self._values) == self.window:
            self._sum -= self._values[0]
        self._values.append(confidence)
        self._sum += confidence
        return self._sum / self.window if len(self._values) == self.window else math.nan


def leading_share(book: VoteBook) -> float:
    """The leading answer's share of the vote's weight (0 with no votes)."""
    total = sum(c.weight for c in book.classes)
    return max(c.weight for c in book.classes) / total if total > 0 else 0.0


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile with linear interpolation (numpy's default), as
    DeepConf sets its bar."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    if ordered[low] == ordered[high]:  # also when both are -inf (no log-probabilities)
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
