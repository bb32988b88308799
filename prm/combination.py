"""Weights over weak verifiers, so many poor scores make one good one.

Weaver (Saad-Falcon et al. 2025) closes much of the gap between best-of-N
and pass@N by combining weak verifiers with weights fit on a little data,
or with none. Both fits are here, over plain score vectors (one row per
sample, one column per verifier, each in [0, 1]):

* :func:`fit_with_labels`: logistic regression on whether each sample's
  answer was right: what an operator with reference answers fits.
* :func:`fit_without_labels`: weak supervision over the verifiers'
  agreement, for an operator with no answers: each verifier is trusted by
  how often it agrees with the consensus of the others (leave one out, so a
  verifier cannot vouch for itself), a one-step Dawid-Skene estimate.
  With no labels, nothing says whether the agreement weights found good
  verifiers or a shared bias; given an ``anchor`` (the vote share), the
  weights only break the anchor's ties.

The combined score of a sample is ``sigmoid(bias + sum(w_i * s_i))``, or
with an anchor, the anchor's part with that as a tie-breaker below it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ponder.core.policy import sigmoid

Rows = Sequence[Sequence[float]]
TIE_BREAK = 1e-3
"""The tie-breaker's share of an anchored score: below the smallest step
of a vote share (one vote in a thousand samples), so it never overturns one."""


@dataclass(frozen=True)
class Weights:
    names: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float = 0.0
    anchor: str | None = None
    """A part that decides alone, the weighted sum only ordering its ties."""

    def score(self, row: Sequence[float]) -> float:
        """The combined score of one sample's verifier scores, in (0, 1)."""
        combined = sigmoid(self.bias + sum(w * s for w, s in zip(self.weights, row)))
        if self.anchor is None:
            return combined
        return (1 - TIE_BREAK) * row[self.names.index(self.anchor)] + TIE_BREAK * combined


def fit_with_labels(names: Sequence[str], rows: Rows, labels: Sequence[bool],
                    *, steps: int = 2000, rate: float = 0.5, l2: float = 1e-3) -> Weights:
    """Logistic regression by full-batch gradient descent (numpy: a few
    thousand samples of a handful of verifiers fit in well under a second).
    ``l2`` keeps the weights finite when one verifier separates the labels
    perfectly."""
    _check(names, rows)
    if len(labels) != len(rows):
        raise ValueError(f"{len(labels)} labels for {len(rows)} samples")
    if not rows:
        raise ValueError("no samples to fit on")
    features = np.asarray(rows, dtype=float).reshape(len(rows), len(names))
    targets = np.asarray(labels, dtype=float)
    weights, bias = np.zeros(len(names)), 0.0
    for _ in range(steps):
        error = 1.0 / (1.0 + np.exp(-(features @ weights + bias))) - targets
        bias -= rate * float(error.mean())
        weights -= rate * (features.T @ error / len(rows) + l2 * weights)
    return Weights(tuple(names), tuple(float(w) for w in weights), bias)


def fit_without_labels(names: Sequence[str], rows: Rows, *, threshold: float = 0.5,
                       floor: float = 0.05, anchor: str | None = None) -> Weights:
    """Each verifier's vote (score >= ``threshold``) is compared with the
    majority of the other verifiers' votes; its agreement rate ``a`` is its
    estimated accuracy and its weight is the log-odds ``log(a / (1 - a))``
    (clipped to [floor, 1 - floor]), as in a naive-Bayes vote. A verifier no
    better than chance gets about zero weight, one that disagrees with the
    rest gets a negative one."""
    _check(names, rows)
    if len(names) < 3:
        raise ValueError("a label-free fit needs at least three verifiers to agree or not")
    if not rows:
        raise ValueError("no samples to fit on")
    votes = [[s >= threshold for s in row] for row in rows]
    weights = []
    for i in range(len(names)):
        agree = 0
        for vote in votes:
            others = [v for j, v in enumerate(vote) if j != i]
            consensus = 2 * sum(others) >= len(others)
            agree += vote[i] == consensus
        rate = min(1 - floor, max(floor, agree / len(votes)))
        weights.append(math.log(rate / (1 - rate)))
    # Scores are centred on the threshold, so a sample every verifier calls
    # right scores above 1/2 and one every verifier rejects below it.
    bias = -threshold * sum(weights)
    if anchor is not None and anchor not in names:
        raise ValueError(f"the anchor {anchor!r} is not among the verifiers {list(names)}")
    return Weights(tuple(names), tuple(weights), bias, anchor)


def _check(names: Sequence[str], rows: Rows) -> None:
    for index, row in enumerate(rows):
        if len(row) != len(names):
            raise ValueError(f"sample {index} has {len(row)} scores for {len(names)} verifiers")

