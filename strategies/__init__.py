"""Test-time compute strategies, by name.

Each strategy is one module with a pydantic ``Config`` (its parameters, with
``name`` as the tag) and ``async def run(task, gen, cfg, emit)``. A strategy
whose choices can share one engine request (one sample each: ``none``,
``cot``) also has ``run_choices(task, gen, cfg, n, emitters)``. Adding one
means adding its module here; the API's request schema, ``/v1/strategies``
and the ``model@strategy`` aliases follow from this table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, Union

from pydantic import Field

from ponder.core.generation import Generator
from ponder.core.metering import Budget, Meter, Usage
from ponder.strategies import (
    auto,
    beam_search,
    best_of_n,
    cot,
    dvts,
    none,
    particle_filtering,
    self_consistency,
)
from ponder.strategies.base import Emitter, StrategyConfig, StrategyResult, Task
from ponder.strategies.thinking import BudgetForcing

RunFn = Callable[[Task, Generator, Any, Emitter | None], Awaitable[StrategyResult]]
RunChoicesFn = Callable[
    [Task, Generator, Any, int, Sequence[Emitter] | None], Awaitable[list[StrategyResult]]
]


@dataclass(frozen=True)
class Strategy:
    name: str
    config: type[StrategyConfig]
    run: RunFn
    summary: str
    run_choices: RunChoicesFn | None = None

    async def execute(
        self,
        task: Task,
        generator: Generator,
        config: StrategyConfig,
        emit: Emitter | None = None,
        budget: Budget | None = None,
    ) -> StrategyResult:
        """One metered run: every engine and scorer call it makes is counted
        in its usage and held to ``budget``."""
        meter = Meter(budget)
        task = replace(task, verifiers=task.verifiers.for_run(meter, generator))
        result = await self.run(task, _forced(task, meter, generator), config, emit)
        result.usage = replace(meter.usage, reasoning_tokens=result.reasoning_tokens)
        _account_budget(result, meter)
        return result

    async def execute_choices(
        self,
        task: Task,
        generator: Generator,
        config: StrategyConfig,
        n: int,
        emitters: Sequence[Emitter] | None = None,
        budget: Budget | None = None,
    ) -> list[StrategyResult]:
        """``n`` choices in one metered run (``run_choices``: one engine
        request with n children), all held to one ``budget``. Each choice's
        usage is what it generated; the first also carries the prompt, which
        the engine read once for all of them."""
        assert self.run_choices is not None
        meter = Meter(budget)
        task = replace(task, verifiers=task.verifiers.for_run(meter, generator))
        results = await self.run_choices(
            task, _forced(task, meter, generator), config, n, emitters
        )
        for index, result in enumerate(results):
            result.usage = Usage(
                prompt_tokens=meter.usage.prompt_tokens if index == 0 else 0,
                cached_tokens=meter.usage.cached_tokens if index == 0 else 0,
                completion_tokens=sum(c.tokens for c in result.candidates),
                reasoning_tokens=result.reasoning_tokens,
            )
            _account_budget(result, meter)
        return results


def _forced(task: Task, meter: Meter, generator: Generator) -> Generator:
    """The run's metered generator, forcing the request's thinking budget on
    every sample (over the meter, so each engine call it makes is counted,
    and so are the tokens it writes in)."""
    metered = meter.generator(generator)
    if task.thinking is None:
        return metered
    return BudgetForcing(metered, task.thinking.markers, task.thinking.budget,
                         charge=lambda tokens: meter.charge_generated(tokens, scoring=False))


def _account_budget(result: StrategyResult, meter: Meter) -> None:
    if meter.exhausted:
        result.budget_exhausted = True
        if result.answer is None:
            result.finish_reason = "length"


def _strategy(module: Any) -> Strategy:
    name = module.Config.model_fields["name"].default
    summary = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return Strategy(name=name, config=module.Config, run=module.run, summary=summary,
                    run_choices=getattr(module, "run_choices", None))


_MODULES = (none, cot, self_consistency, best_of_n, beam_search, dvts, particle_filtering, auto)
STRATEGIES: dict[str, Strategy] = {s.name: s for s in map(_strategy, _MODULES)}

StrategyConfigUnion = Annotated[
    Union[tuple(module.Config for module in _MODULES)],  # type: ignore[valid-type]  # noqa: UP007 - a runtime union pydantic can tag
    Field(discriminator="name"),
]
