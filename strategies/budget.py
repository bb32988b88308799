"""A request's compute budget, enforced underneath any strategy.

``BudgetedGenerator`` wraps the generator one strategy run uses. When the
run's generated tokens or wall time run out, it stops the engine request at
once (closing the stream aborts it) and ends every sample still running with
``finish_reason="length"``, keeping the tokens it had. The strategy then
simply finishes with what it has: the best answer so far, with no budget
logic of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace

from ponder.strategies.base import (
    FinishReason,
    Generation,
    Generator,
    Prompt,
    Sample,
    SampleDelta,
    Sampling,
)


@dataclass(frozen=True)
class Budget:
    max_tokens: int | None = None
    seconds: float | None = None


class BudgetedGenerator:
    def __init__(self, inner: Generator, budget: Budget) -> None:
        self._inner = inner
        self._budget = budget
        self._deadline = (
            None if budget.seconds is None else time.monotonic() + budget.seconds
        )
        self.spent = 0
        self.exhausted = False

    def count_tokens(self, token_ids: Sequence[int], chars: int) -> int:
        return self._inner.count_tokens(token_ids, chars)

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        # Streamed underneath, so a budget can end it part-way.
        texts: list[list[str]] = [[] for _ in range(n)]
        token_ids: list[list[int]] = [[] for _ in range(n)]
        reasons: list[FinishReason] = ["length"] * n
        logprobs: list[float | None] = [None] * n
        prompt_tokens = 0
        async for delta in self.stream(prompt, n, sampling):
            texts[delta.index].append(delta.text)
            token_ids[delta.index].extend(delta.token_ids)
            prompt_tokens = delta.prompt_tokens
            if delta.finish_reason is not None:
                reasons[delta.index] = delta.finish_reason
                logprobs[delta.index] = delta.cumulative_logprob
        samples = [
            Sample("".join(texts[i]), token_ids[i], reasons[i], logprobs[i]) for i in range(n)
        ]
        return Generation(prompt_tokens, samples)

    async def stream(
        self, prompt: Prompt, n: int, sampling: Sampling
    ) -> AsyncIterator[SampleDelta]:
        running = set(range(n))
        prompt_tokens = 0
        if not self.exhausted:
            deltas = self._inner.stream(prompt, n, self._capped(sampling))
            try:
                while True:
                    try:
                        delta = await asyncio.wait_for(anext(deltas), self._seconds_left())
                    except StopAsyncIteration:
                        break
                    except TimeoutError:
                        self.exhausted = True
                        break
                    self.spent += len(delta.token_ids)
                    prompt_tokens = delta.prompt_tokens
                    if delta.finish_reason is not None:
                        running.discard(delta.index)
                    yield delta
                    if self._out_of_tokens():
                        self.exhausted = True
                        break
            finally:
                await deltas.aclose()  # aborts whatever is still running
        for index in sorted(running):
            yield SampleDelta(index, "", [], prompt_tokens, "length")

    def _capped(self, sampling: Sampling) -> Sampling:
        """No single sample may outrun what is left of the budget."""
        if self._budget.max_tokens is None:
            return sampling
        left = max(1, self._budget.max_tokens - self.spent)
        cap = left if sampling.max_tokens is None else min(sampling.max_tokens, left)
        return replace(sampling, max_tokens=cap)

    def _out_of_tokens(self) -> bool:
        return self._budget.max_tokens is not None and self.spent >= self._budget.max_tokens

    def _seconds_left(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())
