"""Samples paid for once, handed out again: how ``auto`` lets its probe's
samples count toward the strategy it escalates to.

``Recorded`` wraps a run's generator. What passes through while it is
:meth:`~Recorded.recording` (``auto``'s probe) is kept; a later call for the
same prompt with the same sampling (a vote or best-of-N drawing whole
samples, as the probe did, under the request's own stop strings too) gets
those samples first and asks the engine only for the rest, with the seed
moved past the ones it reused (so a seeded request does not draw the same
samples twice). A search's steps are sampled with a stop at each step, so
they never match. The strategy on top cannot tell: it sees n samples, as
it asked.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace

from ponder.core.generation import (
    Generation,
    Generator,
    Prompt,
    Sample,
    SampleCollector,
    SampleDelta,
    Sampling,
)


class Recorded:
    def __init__(self, inner: Generator) -> None:
        self._inner = inner
        self._key: tuple[tuple[int, ...], Sampling] | None = None
        self._kept: list[Sample] = []
        self._prompt_tokens = 0
        self._recording = False
        self.reused = 0
        """Samples handed out again so far."""

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Keep the samples drawn inside (the first call's, for reuse)."""
        self._recording = True
        try:
            yield
        finally:
            self._recording = False

    async def render(self, prompt: Prompt) -> Prompt:
        return await self._inner.render(prompt)

    def count_tokens(self, token_ids: Sequence[int], chars: int) -> int:
        return self._inner.count_tokens(token_ids, chars)

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        prompt = await self._inner.render(prompt)
        reused = self._reusable(prompt, sampling, n)
        fresh = await self._inner.generate(prompt, n - len(reused), self._past(sampling, reused)) \
            if n > len(reused) else Generation(self._prompt_tokens, [])
        self._record(prompt, sampling, fresh.samples, fresh.prompt_tokens)
        return Generation(fresh.prompt_tokens, [*reused, *fresh.samples], fresh.cached_tokens)

    async def stream(self, prompt: Prompt, n: int, sampling: Sampling
                     ) -> AsyncIterator[SampleDelta]:
        prompt = await self._inner.render(prompt)
        reused = self._reusable(prompt, sampling, n)
        for index, sample in enumerate(reused):
            yield SampleDelta(index, sample.text, sample.token_ids, self._prompt_tokens,
                              sample.stop_reason, sample.stop_string,
                              sample.cumulative_logprob, sample.logprobs)
        if n == len(reused):
            return
        collector = SampleCollector(n - len(reused))
        finished = []
        async for delta in self._inner.stream(prompt, n - len(reused),
                                              self._past(sampling, reused)):
            if (sample := collector.add(delta)) is not None:
                finished.append(sample)
            yield replace(delta, index=delta.index + len(reused))
        self._record(prompt, sampling, finished, collector.prompt_tokens)

    def _reusable(self, prompt: Prompt, sampling: Sampling, n: int) -> list[Sample]:
        if self._key is None or self._key != _key(prompt, sampling):
            return []
        handed = self._kept[:n]
        self._kept = self._kept[n:]
        self.reused += len(handed)
        return handed

    def _record(self, prompt: Prompt, sampling: Sampling, samples: Sequence[Sample],
                prompt_tokens: int) -> None:
        if self._recording and self._key is None:
            self._key, self._kept = _key(prompt, sampling), list(samples)
            self._prompt_tokens = prompt_tokens

    @staticmethod
    def _past(sampling: Sampling, reused: Sequence[Sample]) -> Sampling:
        if sampling.seed is None or not reused:
            return sampling
        return replace(sampling, seed=sampling.seed + len(reused))


def _key(prompt: Prompt, sampling: Sampling) -> tuple[tuple[int, ...], Sampling]:
    """Same prompt tokens, same sampling; how many log-probabilities each
    asked for does not change what was sampled."""
    return tuple(prompt.token_ids or ()), replace(sampling, logprobs=False, top_logprobs=0)

