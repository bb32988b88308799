"""The run's meter: usage over every call, and budgets that stop generation
underneath any strategy and keep what was made."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from ponder.core.generation import Prompt, SampleDelta, Sampling
from ponder.core.metering import Allowance, Budget, Meter
from ponder.core.scoring import Solution, StepScores
from ponder.strategies import none, self_consistency
from ponder.strategies.base import Task
from ponder.strategies.reasoning import NoReasoning

from ..fakes import ScriptedGenerator, ScriptedPRM, as_solutions, execute

TASK = Task(Prompt(messages=({"role": "user", "content": "2+2?"},)),
            Sampling(max_tokens=100, temperature=0.7), NoReasoning())


async def test_usage_sums_every_call_and_every_scorer() -> None:
    gen = ScriptedGenerator.of("one two", "three")
    meter = Meter()
    metered, prm = meter.generator(gen), meter.scorer(ScriptedPRM({}, tokens_per_step=3))
    first = await metered.generate(TASK.prompt, 2, TASK.sampling)
    rendered = await metered.render(TASK.prompt)
    await metered.generate(rendered.continued(first.samples[0].token_ids), 1, TASK.sampling)
    await prm.score("q", as_solutions(["a", "b"], ["c"]))
    assert meter.usage.prompt_tokens == 7 + (7 + 2)  # the second call re-sends 2 generated ids
    assert meter.usage.completion_tokens == 3 + 2
    assert meter.usage.scoring_tokens == 9
    assert meter.spent == 5 and not meter.exhausted


async def test_token_budget_cuts_every_sample_and_keeps_their_tokens() -> None:
    words = " ".join(f"w{i}" for i in range(50))
    inner = ScriptedGenerator.of(words + " Answer: 4")
    result = await execute(TASK, inner, self_consistency.Config(n=4), budget=Budget(max_tokens=30))
    assert result.budget_exhausted
    assert inner.closed_streams == 1  # the engine request was closed, i.e. aborted
    assert result.usage.completion_tokens == 30
    assert {c.finish_reason for c in result.candidates} == {"length"}
    # Each sample was also capped at what the budget allowed when it started.
    assert inner.calls[0][2].max_tokens == 30


async def test_an_exhausted_budget_generates_nothing_more() -> None:
    inner = ScriptedGenerator.of("one two three four")
    meter = Meter(Allowance(Budget(max_tokens=2)))
    metered = meter.generator(inner)
    first = await metered.generate(TASK.prompt, 1, TASK.sampling)
    second = await metered.generate(TASK.prompt, 2, TASK.sampling)
    assert first.samples[0].num_tokens == 2 and meter.exhausted
    assert len(inner.calls) == 1
    assert [s.finish_reason for s in second.samples] == ["length", "length"]
    assert all(s.num_tokens == 0 for s in second.samples)


async def test_a_judging_scorer_spends_the_same_budget() -> None:
    meter = Meter(Allowance(Budget(max_tokens=3)))
    judge = meter.scoring_generator(ScriptedGenerator.of("Yes"))
    for _ in range(3):
        await judge.generate(TASK.prompt, 1, TASK.sampling)
    assert meter.exhausted and meter.usage.completion_tokens == 0
    assert meter.usage.scoring_tokens == 3 * (7 + 1)
    policy = meter.generator(ScriptedGenerator.of("more"))
    after = await policy.generate(TASK.prompt, 1, TASK.sampling)
    assert after.samples[0].num_tokens == 0


class SlowGenerator(ScriptedGenerator):
    async def stream(
        self, prompt: Prompt, n: int, sampling: Sampling
    ) -> AsyncIterator[SampleDelta]:
        try:
            for step in range(1000):
                await asyncio.sleep(0.01)
                yield SampleDelta(0, f" t{step}", [step], 3)
        finally:
            self.closed_streams += 1


async def test_time_budget_aborts_and_answers_with_what_it_has() -> None:
    inner = SlowGenerator(lambda _p, n, _s: ["unused"] * n)
    result = await execute(TASK, inner, none.Config(), budget=Budget(seconds=0.2))
    assert result.budget_exhausted and inner.closed_streams == 1
    assert result.finish_reason == "length"
    assert 3 <= result.usage.completion_tokens < 100
    assert result.content.startswith(" t0 t1")


class SlowPRM:
    reads_logprobs: int | None = None

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        await asyncio.sleep(10)
        raise AssertionError("the deadline should have cancelled this")


async def test_a_scorer_past_the_deadline_leaves_steps_unscored() -> None:
    meter = Meter(Allowance(Budget(seconds=0.05)))
    scored = await meter.scorer(SlowPRM()).score("q", [Solution(("a", "b"), known=(0.5,))])
    assert scored.scores == [[0.5]] and meter.exhausted

