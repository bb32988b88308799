"""What the policy model's own token log-probabilities, returned with each
sample, say about how sure it was: the part of the scoring contract that
strategies (DeepConf's voting) and reward-free step scorers
(:mod:`ponder.prm.reward_free`) both read, so it lives in ``core``.

Trace confidences (DeepConf, Fu et al. 2025), on a scale of their own:
a token's confidence is minus the mean log-probability of its k best
alternatives (large when they are unlikely, that is when the model is sure
of its choice); a group is a sliding window of ``window`` tokens and its
confidence their mean; a trace's confidence is its lowest group, the mean
of its bottom 10% of groups, its tail (the last ``window`` tokens), or the
mean over all its tokens.

Self-certainty (Kang et al. 2025) at a position is KL(U || p), how far the
next-token distribution is from uniform. The engine returns the k most likely
tokens at each position (k = :data:`TOP_K`), not the whole distribution;
spreading the rest of the probability evenly over the rest of the
vocabulary, the divergence is -log(r) up to O(k / vocabulary), where r is
the probability left outside the k best tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import fmean
from typing import Literal

from ponder.core.generation import TokenLogprob

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
