"""Test-time compute strategies, by name.

Each strategy is one module with a pydantic ``Config`` (its parameters, with
``name`` as the tag) and ``async def run(task, gen, cfg, emit)``. Adding one
means adding its module here; the API's request schema, ``/v1/strategies``
and the ``model@strategy`` aliases follow from this table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Union

from pydantic import Field

from ponder.strategies import best_of_n, cot, none, self_consistency
from ponder.strategies.base import Emitter, Generator, StrategyConfig, StrategyResult, Task

RunFn = Callable[[Task, Generator, Any, Emitter | None], Awaitable[StrategyResult]]


@dataclass(frozen=True)
class Strategy:
    name: str
    config: type[StrategyConfig]
    run: RunFn
    summary: str


def _strategy(module: Any) -> Strategy:
    name = module.Config.model_fields["name"].default
    summary = (module.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return Strategy(name=name, config=module.Config, run=module.run, summary=summary)


STRATEGIES: dict[str, Strategy] = {s.name: s for s in map(_strategy, (none, cot, self_consistency, best_of_n))}

StrategyConfigUnion = Annotated[
    Union[none.Config, cot.Config, self_consistency.Config, best_of_n.Config],  # noqa: UP007 - a runtime union pydantic can tag
    Field(discriminator="name"),
]
