"""Test-time compute strategies, by name: each module registered in the one
table, :data:`ponder.strategies.registry.STRATEGIES`. Adding a strategy
means adding its module to ``_MODULES``."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from ponder.strategies import (
    auto,
    beam_search,
    best_of_n,
    cot,
    dvts,
    genselect,
    none,
    particle_filtering,
    self_consistency,
)
from ponder.strategies.registry import STRATEGIES, Strategy, register

_MODULES = (none, cot, self_consistency, best_of_n, genselect, beam_search, dvts,
            particle_filtering, auto)
for _module in _MODULES:
    register(_module)

StrategyConfigUnion = Annotated[
    Union[tuple(module.Config for module in _MODULES)],  # type: ignore[valid-type]  # noqa: UP007 - a runtime union pydantic can tag
    Field(discriminator="name"),
]

__all__ = ["STRATEGIES", "Strategy", "StrategyConfigUnion"]
