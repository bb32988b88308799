"""The contract every process reward model (PRM) keeps."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

STEP_DELIMITER = "\n\n"


@dataclass
class StepScores:
    scores: list[list[float]]
    """Per candidate, one score in [0, 1] per step (empty for a candidate
    without steps)."""
    tokens: int
    """Tokens the PRM read, reported as ``usage.scoring_tokens``."""


class ProcessRewardModel(Protocol):
    async def score(self, question: str, solutions: Sequence[Sequence[str]]) -> StepScores:
        """Score every step of every candidate solution to ``question`` in one
        call, so a model-backed PRM can batch them all in its engine."""
        ...


def split_steps(solution: str, delimiter: str = STEP_DELIMITER) -> list[str]:
    """The steps of a solution, as step-level search cuts them (a step ends at
    the delimiter). Whitespace around a step is dropped, and so are empty
    steps, so a PRM never scores padding; text without the delimiter is one
    step."""
    return [step.strip() for step in solution.split(delimiter) if step.strip()]


class WholeSolutionPRM(ABC):
    """Base of the PRMs that read one whole solution per request (a model
    scores all its steps in one pass): the candidates' requests run
    concurrently, and a candidate without steps costs none."""

    async def score(self, question: str, solutions: Sequence[Sequence[str]]) -> StepScores:
        async def one(steps: Sequence[str]) -> tuple[list[float], int]:
            return await self.score_solution(question, steps) if steps else ([], 0)

        scored = await asyncio.gather(*(one(steps) for steps in solutions))
        return StepScores([scores for scores, _ in scored], tokens=sum(n for _, n in scored))

    @abstractmethod
    async def score_solution(self, question: str, steps: Sequence[str]) -> tuple[list[float], int]:
        """The scores of ``steps`` (at least one), and the tokens read."""
