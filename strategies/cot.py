"""``cot``: one sample with a chain-of-thought instruction. The trace is the
text before the final-answer marker and the answer the text after it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ponder.strategies.base import Emitter, Generator, StrategyConfig, StrategyResult, Task
from ponder.strategies.single_sample import run_single_sample


class Config(StrategyConfig):
    name: Literal["cot"] = "cot"
    prompt: Literal["cot"] = Field("cot", description="Built-in chain-of-thought template.")


async def run(task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None) -> StrategyResult:
    return await run_single_sample(task, gen, cfg.prompt, emit)
