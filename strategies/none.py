"""``none``: the request as sent, one sample. The baseline every other
strategy is measured against."""

from __future__ import annotations

from typing import Literal

from ponder.strategies.base import Emitter, Generator, StrategyConfig, StrategyResult, Task
from ponder.strategies.single_sample import run_single_sample


class Config(StrategyConfig):
    name: Literal["none"] = "none"


async def run(task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None) -> StrategyResult:
    return await run_single_sample(task, gen, "direct", emit)
