"""Confidence without a reward model: what the policy model's own token
log-probabilities, already returned with each sample, say about it. Every
server offers the step scorers here by name, so best-of-N and step-level
search work on any deployment; self-consistency's DeepConf options read the
trace confidences.

Step scorers (a score in [0, 1] per step, for the aggregations):

* ``mean-logprob``: exp(mean log-probability of the step's tokens), the
  geometric mean of their probabilities, in (0, 1].
* ``self-certainty`` (Kang et al. 2025): how far each next-token
  distribution is from uniform, KL(U || p), averaged over the step's tokens.
  The engine returns the k most likely tokens at each position (k =
  :data:`TOP_K`), not the whole distribution; spreading the rest of the
  probability evenly over the rest of the vocabulary, the divergence is
  -log(r) up to O(k / vocabulary), where r is the probability left outside
  the k best tokens. A step scores 1 - exp(-mean), that is 1 - the
  geometric mean of r over its tokens: 0 when the model has no preference
  among its k best, near 1 when it is sure.

Trace confidences (DeepConf, Fu et al. 2025), on a scale of their own:
a token's confidence is minus the mean log-probability of its k best
alternatives (large when they are unlikely, that is when the model is sure
of its choice); a group is a sliding window of ``window`` tokens and its
confidence their mean; a trace's confidence is its lowest group, the mean
of its bottom 10% of groups, its tail (the last ``window`` tokens), or the
mean over all its tokens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import fmean
from typing import Literal

from ponder.core.generation import TokenLogprob
from ponder.core.scoring import ProcessRewardModel, Solution, StepScores

NEUTRAL = 0.5
"""For a step without tokens to read (nothing to be confident about)."""
TOP_K = 20
"""Alternatives read per token: vLLM's default ``max_logprobs``, and
DeepConf's."""
MIN_REMAINDER = 1e-6
"""The probability outside the k best counted as at least this: below it
the engine's float32 log-probabilities no longer tell certainties apart."""
BOTTOM_SHARE = 0.1

TraceConfidence = Literal["lowest_group", "bottom_10", "tail", "mean"]


def token_confidence(token: TokenLogprob) -> float:
    """DeepConf's token confidence: -mean log-probability of the k best
    tokens at this position (of the chosen one when no alternatives were
    asked for)."""
    if not token.top:
        return -token.logprob
    return -fmean(logprob for _, logprob in token.top)


def self_certainty(token: TokenLogprob) -> float:
    """KL(uniform || p) at this position, from the k best tokens (module
    docstring): -log of the probability left outside them."""
    top = token.top or ((token.token, token.logprob),)
    remainder = 1.0 - sum(math.exp(logprob) for _, logprob in top)
    return -math.log(max(remainder, MIN_REMAINDER))


def group_confidences(confidences: Sequence[float], window: int) -> list[float]:
    """The mean of every window of ``window`` consecutive tokens (one group
    for a trace shorter than that), in one pass."""
    if len(confidences) <= window:
        return [fmean(confidences)] if confidences else []
    running = sum(confidences[:window])
    groups = [running / window]
    for leaving, entering in zip(confidences, confidences[window:]):
        running += entering - leaving
        groups.append(running / window)
    return groups


def trace_confidence(
    tokens: Sequence[TokenLogprob], how: TraceConfidence, window: int
) -> float:
    """One trace's DeepConf confidence; -inf for a trace without tokens, so
    it never outranks one that has them."""
    confidences = [token_confidence(t) for t in tokens]
    if not confidences:
        return -math.inf
    if how == "mean":
        return fmean(confidences)
    if how == "tail":
        return fmean(confidences[-window:])
    groups = group_confidences(confidences, window)
    if how == "lowest_group":
        return min(groups)
    lowest = sorted(groups)[: max(1, int(len(groups) * BOTTOM_SHARE))]
    return fmean(lowest)


class MeanLogprob:
    reads_logprobs: int | None = 0

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        """Reads no tokens of its own: ``tokens`` is 0."""
        return StepScores([_scores(s, _geometric_mean_probability) for s in solutions], 0)


class SelfCertainty:
    reads_logprobs: int | None = TOP_K

    async def score(self, question: str, solutions: Sequence[Solution]) -> StepScores:
        """Reads no tokens of its own: ``tokens`` is 0."""
        return StepScores([_scores(s, _certainty) for s in solutions], 0)


def _geometric_mean_probability(tokens: Sequence[TokenLogprob]) -> float:
    return math.exp(fmean(t.logprob for t in tokens))


def _certainty(tokens: Sequence[TokenLogprob]) -> float:
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
