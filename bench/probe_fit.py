"""Fitting the hidden-state probe, and how good it is.

The rows are steps: the served model's hidden state at the end of a step
of one of its own samples, labelled by whether that sample's final answer
was right (the on-policy value of the prefix). Questions, not steps, are
split between training and held out, so that sixteen samples of one
question never sit on both sides.

Two probes, both numpy: logistic regression by Newton's method on
standardised features (exact, seconds), and a two-layer network by Adam
(Zhang et al. 2025's probe shape). The ridge penalty is chosen on a slice
of the training questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ponder.prm.probe_file import ProbeWeights

L2_GRID = (1.0, 10.0, 100.0, 1000.0)
"""Ridge penalties tried (on standardised features, summed over rows): the
features are hundreds wide and the rows a few thousand, so the fit needs one."""
VALIDATION_SHARE = 0.25


def roc_auc(scores: Sequence[float] | np.ndarray, labels: Sequence[bool] | np.ndarray
            ) -> float | None:
    """The chance that a random right row outscores a random wrong one (ties
    count half); None when one class is missing."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    right, wrong = int(labels.sum()), int((~labels).sum())
    if right == 0 or wrong == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):  # average ranks over ties
        end = start
        while end + 1 < len(scores) and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return float((ranks[labels].sum() - right * (right + 1) / 2) / (right * wrong))


def calibration(probabilities: np.ndarray, labels: np.ndarray, bins: int = 10
                ) -> tuple[float, list[dict[str, float]]]:
    """Expected calibration error over equal-width bins, and the bins (mean
    predicted against observed rate, with the count)."""
    probabilities, labels = np.asarray(probabilities), np.asarray(labels, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probabilities, edges[1:-1]), 0, bins - 1)
    table, error = [], 0.0
    for index in range(bins):
        inside = which == index
        if not inside.any():
            continue
        predicted, observed = float(probabilities[inside].mean()), float(labels[inside].mean())
        error += inside.mean() * abs(predicted - observed)
        table.append({"predicted": round(predicted, 3), "observed": round(observed, 3),
                      "rows": int(inside.sum())})
    return float(error), table


@dataclass(frozen=True)
class Standardiser:
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def of(cls, features: np.ndarray) -> Standardiser:
        scale = features.std(axis=0)
        return cls(features.mean(axis=0), np.where(scale > 1e-6, scale, 1.0))

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.scale


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float,
                 iterations: int = 30) -> ProbeWeights:
    """Ridge logistic regression by Newton's method (the Hessian is
    features x features: 576 wide for the embedded model, a few seconds)."""
    standard = Standardiser.of(features)
    x = np.hstack([standard(features), np.ones((len(features), 1))])
    y = np.asarray(labels, dtype=float)
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0  # the intercept is not shrunk
    w = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -60, 60)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return ProbeWeights(standard.mean.astype(np.float32), standard.scale.astype(np.float32),
                        ((w[:-1, None].astype(np.float32), w[-1:].astype(np.float32)),))


def fit_network(features: np.ndarray, labels: np.ndarray, l2: float, *, hidden: int = 32,
                epochs: int = 300, rate: float = 3e-3, seed: int = 0) -> ProbeWeights:
    """A two-layer ReLU network by full-batch Adam on the mean log loss plus
    ``l2 / rows`` times the squared weights (the same penalty per row as the
    logistic fit's)."""
    rng = np.random.default_rng(seed)
    standard = Standardiser.of(features)
    x = standard(features).astype(np.float32)
    y = np.asarray(labels, dtype=np.float32)
    width = x.shape[1]
    params = [rng.normal(0, np.sqrt(2 / width), (width, hidden)).astype(np.float32),
              np.zeros(hidden, np.float32),
              rng.normal(0, np.sqrt(1 / hidden), (hidden, 1)).astype(np.float32),
              np.zeros(1, np.float32)]
    moments = [np.zeros_like(p) for p in params]
    squares = [np.zeros_like(p) for p in params]
    decay = l2 / len(x)
    for step in range(1, epochs + 1):
        w1, b1, w2, b2 = params
        h = np.maximum(x @ w1 + b1, 0)
        p = 1 / (1 + np.exp(-np.clip((h @ w2 + b2)[:, 0], -60, 60)))
        d_out = ((p - y) / len(x))[:, None]
        d_h = (d_out @ w2.T) * (h > 0)
        grads = [x.T @ d_h + 2 * decay * w1, d_h.sum(0), h.T @ d_out + 2 * decay * w2,
                 d_out.sum(0)]
        for i, g in enumerate(grads):
            moments[i] = 0.9 * moments[i] + 0.1 * g
            squares[i] = 0.999 * squares[i] + 0.001 * g * g
            corrected = moments[i] / (1 - 0.9**step)
            params[i] -= rate * corrected / (np.sqrt(squares[i] / (1 - 0.999**step)) + 1e-8)
    w1, b1, w2, b2 = params
    return ProbeWeights(standard.mean.astype(np.float32), standard.scale.astype(np.float32),
                        ((w1, b1), (w2, b2)))


def log_loss(weights: ProbeWeights, features: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(weights.probability(features), 1e-6, 1 - 1e-6)
    y = np.asarray(labels, dtype=float)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def split_groups(groups: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A boolean mask of the rows whose group falls in a seeded ``share`` of
    the groups."""
    unique = np.unique(groups)
    chosen = np.random.default_rng(seed).permutation(unique)[:max(1, round(share * len(unique)))]
    return np.isin(groups, chosen)


@dataclass(frozen=True)
class FittedProbe:
    weights: ProbeWeights
    l2: float
    """The ridge penalty chosen."""
    validation_log_loss: float
    """Its log loss on the held-aside slice of the training groups, fit on
    the rest: how layers and kinds are compared without the held-out set."""


def fit_probe(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, kind: str,
              seed: int = 0) -> FittedProbe:
    """The probe of ``kind`` (``logistic`` or ``network``) with its ridge
    penalty chosen by log loss on a held-aside slice of the training groups,
    then refit on all of them."""
    fit = fit_logistic if kind == "logistic" else fit_network
    aside = split_groups(groups, VALIDATION_SHARE, seed)
    losses = {l2: log_loss(fit(features[~aside], labels[~aside], l2),
                           features[aside], labels[aside]) for l2 in L2_GRID}
    best = min(losses, key=losses.__getitem__)
    return FittedProbe(fit(features, labels, best), best, losses[best])
