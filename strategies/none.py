"""``none``: the request as sent, one sample. The baseline every other
strategy is measured against."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ponder.strategies.base import EarlyExitOption, Emitter, Generator, StrategyResult, Task
from ponder.strategies.single_sample import run_single_samples


class Config(EarlyExitOption):
    name: Literal["none"] = "none"


async def run(task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None) -> StrategyResult:
    return (await run_choices(task, gen, cfg, 1, None if emit is None else [emit]))[0]


async def run_choices(
    task: Task, gen: Generator, cfg: Config, n: int, emitters: Sequence[Emitter] | None = None
) -> list[StrategyResult]:
    return await run_single_samples(task, gen, "direct", n, emitters)
