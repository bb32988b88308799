"""``beam_search``: step-level beam search guided by a process reward model
(Snell et al. 2024; search-and-learn). Each round every kept partial
solution gets ``expand`` continuations of one step, the scorer scores every
new step in one batch, and the best ``beam_width`` partial solutions live on;
the best complete solution answers (the vote among equally scored ones
breaks ties).

It spends compute where the scorer sees promise, step by step, instead of on
whole solutions that went wrong early: on hard problems the best use of a
fixed budget. With no PRM configured, a reward-free scorer (`mean-logprob`)
guides it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ponder.core.generation import Generator
from ponder.strategies.base import Emitter, StrategyResult, Task
from ponder.strategies.search import Search, SearchConfig, run_search, search_expand


class Config(SearchConfig):
    name: Literal["beam_search"] = "beam_search"
    beam_width: int = Field(4, ge=1, le=64, description="Partial solutions kept each round.")
    expand: int = Field(
        4, ge=1, le=64, description="Continuations of one step drawn for each kept solution."
    )

    @property
    def max_samples(self) -> int:
        return self.beam_width * self.expand * self.max_steps

    @classmethod
    def sized(cls, size: int) -> dict[str, Any]:
        expand = search_expand(size)
        return {"beam_width": max(1, size // expand), "expand": expand}


async def run(
    task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None
) -> StrategyResult:
    scorer_name, scorer = task.verifiers.get(cfg.prm)
    shape = cfg.shape(subtrees=1, width=cfg.beam_width, expand=cfg.expand, task=task)
    return await run_search(Search(task, gen, scorer, shape), scorer_name, emit)
