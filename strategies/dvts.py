"""``dvts``: diverse verifier tree search (search-and-learn). The budget of
``n`` continuations per round is split into ``n / expand`` independent
subtrees that each keep one line of reasoning: every round a line gets
``expand`` continuations of one step and keeps the best-scored. The
subtrees run together, scored in one batch per round, and the answer is the
best line's, or (``weighted_vote``) the answer whose lines carry the most
score.

Where beam search can collapse onto one line the scorer likes early, DVTS
keeps ``n / expand`` different ones to the end: better at large budgets.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ponder.core.generation import Generator
from ponder.strategies.base import Emitter, StrategyResult, Task
from ponder.strategies.search import Search, SearchConfig, run_search, search_expand


class Config(SearchConfig):
    name: Literal["dvts"] = "dvts"
    n: int = Field(16, ge=1, le=1024, description="Continuations drawn per round, over all subtrees.")
    expand: int = Field(
        4, ge=1, le=64, description="Continuations per subtree and round; n / expand subtrees."
    )

    @model_validator(mode="after")
    def _whole_subtrees(self) -> Config:
        if self.n % self.expand:
            raise ValueError(f"n ({self.n}) must be a multiple of expand ({self.expand})")
        return self

    @property
    def max_samples(self) -> int:
        return self.n * self.max_steps

    @classmethod
    def sized(cls, size: int) -> dict[str, Any]:
        expand = search_expand(size)
        return {"n": size - size % expand, "expand": expand}


async def run(
    task: Task, gen: Generator, cfg: Config, emit: Emitter | None = None
) -> StrategyResult:
    scorer_name, scorer = task.verifiers.get(cfg.prm)
    shape = cfg.shape(subtrees=cfg.n // cfg.expand, width=1, expand=cfg.expand, task=task)
    return await run_search(Search(task, gen, scorer, shape), scorer_name, emit)
