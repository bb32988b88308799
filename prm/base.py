"""What the model-backed scorers here share. The contract every scorer keeps
is :mod:`ponder.core.scoring`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from ponder.core.scoring import Solution, StepScores
from ponder.core.tasks import gather_all


class WholeSolutionPRM(ABC):
    """Base of the PRMs that read one whole solution per request (a model
    scores all its steps in one pass): the candidates' requests run
    concurrently. A candidate whose steps are all scored already costs
    nothing; one with a new step is read whole, as the model needs it, and
    the known part is what its engine's prefix cache holds."""

    reads_logprobs: int | None = None

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        async def one(solution: Solution) -> tuple[list[float], int]:
            if not solution.new_steps:
                return list(solution.known), 0
            return await self.score_solution(question, solution.steps)

        scored = await gather_all(*(one(solution) for solution in solutions))
        return StepScores([scores for scores, _ in scored], tokens=sum(n for _, n in scored))

    @abstractmethod
    async def score_solution(self, question: str, steps: Sequence[str]) -> tuple[list[float], int]:
        """The scores of ``steps`` (at least one), and the tokens read."""
