"""The contract every process reward model (PRM) keeps."""

from __future__ import annotations

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
