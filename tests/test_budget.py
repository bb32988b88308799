"""Budgets stop generation underneath any strategy and keep what was made."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ponder.strategies import none, self_consistency
from ponder.strategies.base import Prompt, SampleDelta, Sampling, Task
from ponder.strategies.budget import Budget, BudgetedGenerator
from ponder.strategies.reasoning import NoReasoning

from .fakes import ScriptedGenerator

TASK = Task(Prompt(messages=({"role": "user", "content": "2+2?"},)),
            Sampling(max_tokens=100, temperature=0.7), NoReasoning())


async def test_token_budget_cuts_every_sample_and_keeps_their_tokens() -> None:
    words = " ".join(f"w{i}" for i in range(50))
    inner = ScriptedGenerator.of(words + " Answer: 4")
    budgeted = BudgetedGenerator(inner, Budget(max_tokens=30))
    result = await self_consistency.run(TASK, budgeted, self_consistency.Config(n=4))
    assert budgeted.exhausted
    assert inner.closed_streams == 1  # the engine request was closed, i.e. aborted
    assert result.usage.completion_tokens == budgeted.spent == 30
    assert {c.finish_reason for c in result.candidates} == {"length"}
    # Each sample was also capped at what the budget allowed when it started.
    assert inner.calls[0][2].max_tokens == 30


async def test_an_exhausted_budget_generates_nothing_more() -> None:
    inner = ScriptedGenerator.of("one two three four")
    budgeted = BudgetedGenerator(inner, Budget(max_tokens=2))
    first = await budgeted.generate(TASK.prompt, 1, TASK.sampling)
    second = await budgeted.generate(TASK.prompt, 2, TASK.sampling)
    assert first.samples[0].num_tokens == 2 and budgeted.exhausted
    assert len(inner.calls) == 1
    assert [s.finish_reason for s in second.samples] == ["length", "length"]
    assert all(s.num_tokens == 0 for s in second.samples)


class SlowGenerator(ScriptedGenerator):
    async def stream(self, prompt: Prompt, n: int, sampling: Sampling) -> AsyncIterator[SampleDelta]:
        try:
            for step in range(1000):
                await asyncio.sleep(0.01)
                yield SampleDelta(0, f" t{step}", [step], 3)
        finally:
            self.closed_streams += 1


async def test_time_budget_aborts_and_answers_with_what_it_has() -> None:
    inner = SlowGenerator(lambda _p, n, _s: ["unused"] * n)
    budgeted = BudgetedGenerator(inner, Budget(seconds=0.2))
    result = await none.run(TASK, budgeted, none.Config())
    assert budgeted.exhausted and inner.closed_streams == 1
    assert result.finish_reason == "length"
    assert 3 <= result.usage.completion_tokens < 100
    assert result.content.startswith(" t0 t1")
