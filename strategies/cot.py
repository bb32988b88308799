"""``cot``: one sample with a chain-of-thought instruction. The trace is the
text before the final-answer marker and the answer the text after it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from ponder.strategies.base import EarlyExitOption, Emitter, Generator, StrategyResult, Task
from ponder.strategies.prompts import chosen_style
from ponder.strategies.single_sample import run_single_samples


class Config(EarlyExitOption):
    name: Literal["cot"] = "cot"
    prompt: Literal["cot"] = Field("cot", description="Built-in chain-of-thought template.")

    def probed_as(self, task: Task) -> tuple[str, str]:
        return chosen_style(self.prompt, task, explicit=True, param="strategy"), "auto"


async def run(task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None) -> StrategyResult:
    return (await run_choices(task, gen, cfg, 1, None if emit is None else [emit]))[0]


async def run_choices(
    task: Task, gen: Generator, cfg: Config, n: int, emitters: Sequence[Emitter] | None = None
) -> list[StrategyResult]:
    style = chosen_style(cfg.prompt, task, explicit=True, param="strategy")
    return await run_single_samples(task, gen, style, n, emitters)
