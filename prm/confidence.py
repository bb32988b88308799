"""Reward-free step scorers: the policy model's own confidence in what it
wrote, read from the log-probabilities the engine already returned with the
sample. They need no reward model, so step-level search and best-of-N work
on any deployment; every server offers them by name.

``mean-logprob``: a step scores exp(mean log-probability of its tokens), the
geometric mean of their probabilities, in (0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import fmean

from ponder.core.scoring import ProcessRewardModel, Solution, StepScores

NEUTRAL = 0.5
"""For a step without tokens to read (nothing to be confident about)."""


class MeanLogprob:
    reads_logprobs: int | None = 0

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        """Reads no tokens of its own: ``tokens`` is 0."""
        return StepScores([_scores(solution) for solution in solutions], tokens=0)


def _scores(solution: Solution) -> list[float]:
    steps = solution.logprobs or ((),) * len(solution.steps)
    new = steps[len(solution.known) :]
    return [*solution.known, *(
        math.exp(fmean(t.logprob for t in tokens)) if tokens else NEUTRAL for tokens in new
    )]


REWARD_FREE: dict[str, ProcessRewardModel] = {"mean-logprob": MeanLogprob()}
"""Offered by every server beside its configured PRMs."""
