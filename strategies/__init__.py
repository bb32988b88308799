"""Test-time compute strategies, by name.

Each strategy is one module with a pydantic ``Config`` (its parameters, with
``name`` as the tag) and ``async def run(task, gen, cfg, emit)``. Adding one
means adding its module here; the API's request schema, ``/v1/strategies``
and the ``model@strategy`` aliases follow from this table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, Union

from pydantic import Field

from ponder.core.generation import Generator
from ponder.core.metering import Budget, Meter
from ponder.strategies import beam_search, best_of_n, cot, dvts, none, self_consistency
from ponder.strategies.base import Emitter, StrategyConfig, StrategyResult, Task

RunFn = Callable[[Task, Generator, Any, Emitter | None], Awaitable[StrategyResult]]


@dataclass(frozen=True)
class Strategy:
    name: str
    config: type[StrategyConfig]
    run: RunFn
    summary: str

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
        result = await self.run(task, meter.generator(generator), config, emit)
        result.usage = replace(meter.usage, reasoning_tokens=result.reasoning_tokens)
        if meter.exhausted:
            result.budget_exhausted = True
            if result.answer is None:
                result.finish_reason = "length"
        return result


def _strategy(module: Any) -> Strategy:
    name = module.Config.model_fields["name"].default
    summary = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return Strategy(name=name, config=module.Config, run=module.run, summary=summary)


_MODULES = (none, cot, self_consistency, best_of_n, beam_search, dvts)
STRATEGIES: dict[str, Strategy] = {s.name: s for s in map(_strategy, _MODULES)}

StrategyConfigUnion = Annotated[
    Union[tuple(module.Config for module in _MODULES)],  # type: ignore[valid-type]  # noqa: UP007 - a runtime union pydantic can tag
    Field(discriminator="name"),
]
