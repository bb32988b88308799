"""Step scorers without a reward model: what the policy model's own token
log-probabilities, already returned with each sample, say about each step.
Every server offers them by name beside its configured PRMs, so best-of-N
and step-level search work on any deployment. A score in [0, 1] per step:

* ``mean-logprob``: exp(mean log-probability of the step's tokens), the
  geometric mean of their probabilities, in (0, 1].
* ``self-certainty`` (Kang et al. 2025): the mean over the step's tokens of
  :func:`~ponder.core.confidence.self_certainty`, read as 1 - exp(-mean),
  that is 1 - the geometric mean of the probability left outside the k best
  tokens: 0 when the model has no preference among its k best, near 1 when
  it is sure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import fmean

from ponder.core.confidence import TOP_K, self_certainty
from ponder.core.generation import TokenLogprob
from ponder.core.scoring import ProcessRewardModel, Solution, StepScores

NEUTRAL = 0.5
"""For a step without tokens to read (nothing to be confident about)."""


class MeanLogprob:
    reads_logprobs: int | None = 0

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        """Reads no tokens of its own: ``tokens`` is 0."""
        return StepScores([_scores(s, geometric_mean_probability) for s in solutions], 0)


class SelfCertainty:
    reads_logprobs: int | None = TOP_K

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        """Reads no tokens of its own: ``tokens`` is 0."""
        return StepScores([_scores(s, certainty) for s in solutions], 0)


def geometric_mean_probability(tokens: Sequence[TokenLogprob]) -> float:
    return math.exp(fmean(t.logprob for t in tokens))


def certainty(tokens: Sequence[TokenLogprob]) -> float:
    return 1.0 - math.exp(-fmean(map(self_certainty, tokens)))


def _scores(
    solution: Solution, step_score: Callable[[Sequence[TokenLogprob]], float]
) -> list[float]:
    steps = solution.logprobs or ((),) * len(solution.steps)
    new = steps[len(solution.known) :]
    return [*solution.known, *(step_score(tokens) if tokens else NEUTRAL for tokens in new)]


REWARD_FREE: dict[str, ProcessRewardModel] = {
    "mean-logprob": MeanLogprob(),
    "self-certainty": SelfCertainty(),
}
"""Offered by every server beside its configured PRMs."""
