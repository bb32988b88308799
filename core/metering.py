"""Usage and budgets over every call one strategy run makes.

A strategy may call the engine once (``none``) or hundreds of times (a beam
search of many rounds), and its scorer may run a model of its own (the
self-judge generates on the served engine). The server wraps the generator
and every scorer a run gets in one :class:`Meter`, so

* ``usage`` is exact for any strategy: every call's prompt, cached and
  generated tokens, and what the scorers read, counted where they are spent
  and once;
* ``budget`` holds for any strategy: when the generated tokens (the
  policy's and a judging model's) or the wall time run out, the call in
  flight is stopped in the engine at once and keeps what it made, later
  calls generate nothing, and a scorer past the deadline leaves its steps
  unscored. The strategy simply finishes with what it has: the best answer
  so far, with no budget logic of its own. A budget is the request's: the
  runs of all its choices draw on one :class:`Allowance`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from ponder.core.generation import (
    Generation,
    Generator,
    Prompt,
    SampleCollector,
    SampleDelta,
    Sampling,
)
from ponder.core.scoring import ProcessRewardModel, ScorerWrapper, Solution, StepScores


@dataclass
class Usage:
    prompt_tokens: int = 0
    cached_tokens: int = 0
    """Of the prompt tokens, those the engine's prefix cache served."""
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    scoring_tokens: int = 0
    probe_tokens: int = 0
    """Of the completion tokens, those early-exit probes wrote."""

    def __iadd__(self, other: Usage) -> Usage:
        self.prompt_tokens += other.prompt_tokens
        self.cached_tokens += other.cached_tokens
        self.completion_tokens += other.completion_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.scoring_tokens += other.scoring_tokens
        self.probe_tokens += other.probe_tokens
        return self


@dataclass(frozen=True)
class Budget:
    max_tokens: int | None = None
    seconds: float | None = None

    @property
    def limited(self) -> bool:
        return self.max_tokens is not None or self.seconds is not None


class Allowance:
    """What one request may spend, shared by every run it makes (one per
    choice): a request's budget caps them all together."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget or Budget()
        self.spent = 0
        """Generated tokens charged to the budget."""
        self.exhausted = False
        self.deadline = (
            None if self.budget.seconds is None else time.monotonic() + self.budget.seconds
        )


class Meter:
    """One strategy run's account: its own usage, drawn on its request's
    allowance."""

    def __init__(self, allowance: Allowance | None = None) -> None:
        self.allowance = allowance or Allowance()
        self.usage = Usage()

    @property
    def budget(self) -> Budget:
        return self.allowance.budget

    @property
    def spent(self) -> int:
        return self.allowance.spent

    @property
    def exhausted(self) -> bool:
        return self.allowance.exhausted

    @exhausted.setter
    def exhausted(self, value: bool) -> None:
        self.allowance.exhausted = value

    def generator(self, inner: Generator) -> Generator:
        """The policy's generator: its tokens are the request's usage."""
        return MeteredGenerator(inner, self, scoring=False)

    def scoring_generator(self, inner: Generator) -> Generator:
        """A judging scorer's generator: what it reads and writes is scoring
        usage, and what it writes counts against the budget too."""
        return MeteredGenerator(inner, self, scoring=True)

    def probe_generator(self, inner: Generator) -> Generator:
        """What probes a chain for its answer: its tokens are the request's
        completion tokens, and its probe tokens too."""
        return MeteredGenerator(inner, self, scoring=False, probing=True)

    def scorer(self, inner: ProcessRewardModel) -> ProcessRewardModel:
        return MeteredScorer(inner, self)

    def seconds_left(self) -> float | None:
        if self.allowance.deadline is None:
            return None
        return max(0.0, self.allowance.deadline - time.monotonic())

    def charge_prompt(self, prompt_tokens: int, cached_tokens: int, scoring: bool) -> None:
        if scoring:
            self.usage.scoring_tokens += prompt_tokens
        else:
            self.usage.prompt_tokens += prompt_tokens
            self.usage.cached_tokens += cached_tokens

    def charge_generated(self, tokens: int, scoring: bool, probing: bool = False) -> None:
        if scoring:
            self.usage.scoring_tokens += tokens
        else:
            self.usage.completion_tokens += tokens
        if probing:
            self.usage.probe_tokens += tokens
        self.allowance.spent += tokens
        if self.budget.max_tokens is not None and self.spent >= self.budget.max_tokens:
            self.exhausted = True

    def capped(self, sampling: Sampling) -> Sampling:
        """No single sample may outrun what is left of the token budget (nor
        be asked for more tokens than that, as ``min_tokens`` would)."""
        if self.budget.max_tokens is None:
            return sampling
        left = max(1, self.budget.max_tokens - self.spent)
        cap = left if sampling.max_tokens is None else min(sampling.max_tokens, left)
        return replace(sampling, max_tokens=cap, min_tokens=min(sampling.min_tokens, cap))


class MeteredGenerator:
    def __init__(
        self, inner: Generator, meter: Meter, *, scoring: bool, probing: bool = False
    ) -> None:
        self._inner = inner
        self._meter = meter
        self._scoring = scoring
        self._probing = probing

    async def render(self, prompt: Prompt) -> Prompt:
        return await self._inner.render(prompt)

    def count_tokens(self, token_ids: Sequence[int], chars: int) -> int:
        return self._inner.count_tokens(token_ids, chars)

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        if self._meter.budget.limited:
            # Streamed underneath, so the budget can end it part-way.
            collected = SampleCollector(n)
            async for delta in self.stream(prompt, n, sampling):
                collected.add(delta)
            return collected.generation()
        generation = await self._inner.generate(prompt, n, sampling)
        self._meter.charge_prompt(generation.prompt_tokens, generation.cached_tokens, self._scoring)
        self._meter.charge_generated(sum(s.num_tokens for s in generation.samples), self._scoring,
                                     self._probing)
        return generation

    async def stream(
        self, prompt: Prompt, n: int, sampling: Sampling
    ) -> AsyncIterator[SampleDelta]:
        meter = self._meter
        running = set(range(n))
        prompt_tokens = 0
        if not meter.exhausted:
            deltas = self._inner.stream(prompt, n, meter.capped(sampling))
            try:
                while True:
                    try:
                        delta = await asyncio.wait_for(anext(deltas), meter.seconds_left())
                    except StopAsyncIteration:
                        break
                    except asyncio.TimeoutError:
                        meter.exhausted = True
                        break
                    if not prompt_tokens:
                        prompt_tokens = delta.prompt_tokens
                        meter.charge_prompt(prompt_tokens, delta.cached_tokens, self._scoring)
                    meter.charge_generated(len(delta.token_ids), self._scoring, self._probing)
                    if delta.stop_reason is not None:
                        running.discard(delta.index)
                    yield delta
                    if meter.exhausted:
                        break
            finally:
                await deltas.aclose()  # aborts whatever is still running
        for index in sorted(running):
            yield SampleDelta(index, "", [], prompt_tokens, "length")


class MeteredScorer(ScorerWrapper):
    def __init__(self, inner: ProcessRewardModel, meter: Meter) -> None:
        super().__init__(inner)
        self._meter = meter

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        unscored = StepScores([list(s.known) for s in solutions], tokens=0)
        if self._meter.exhausted:
            return unscored
        try:
            scored = await asyncio.wait_for(
                self.inner.score(question, solutions), self._meter.seconds_left()
            )
        except asyncio.TimeoutError:
            self._meter.exhausted = True
            return unscored
        self._meter.usage.scoring_tokens += scored.tokens
        return scored

