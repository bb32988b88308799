"""The combined verifier's fits recover a good verifier among noisy ones."""

from __future__ import annotations

import random

import pytest

from ponder.prm.combination import fit_with_labels, fit_without_labels

NAMES = ("good", "noise-a", "noise-b", "noise-c")


def _samples(count: int = 400, seed: int = 0) -> tuple[list[list[float]], list[bool]]:
    """A verifier right 90% of the time beside three that are right 55%."""
    rng = random.Random(seed)
    rows, labels = [], []
    for _ in range(count):
        label = rng.random() < 0.4
        row = []
        for accuracy in (0.9, 0.55, 0.55, 0.55):
            says = label if rng.random() < accuracy else not label
            row.append(rng.uniform(0.6, 1.0) if says else rng.uniform(0.0, 0.4))
        rows.append(row)
        labels.append(label)
    return rows, labels


def _accuracy(weights, rows, labels) -> float:
    return sum((weights.score(r) >= 0.5) == y for r, y in zip(rows, labels)) / len(rows)


def test_labelled_fit_weighs_the_good_verifier_most_and_beats_every_single_one() -> None:
    rows, labels = _samples()
    weights = fit_with_labels(NAMES, rows, labels)
    assert weights.weights[0] == max(weights.weights)
    assert weights.weights[0] > 2 * max(abs(w) for w in weights.weights[1:])
    test_rows, test_labels = _samples(seed=1)
    assert _accuracy(weights, test_rows, test_labels) >= 0.85


def test_label_free_fit_trusts_the_verifier_that_agrees_with_the_rest() -> None:
    rng = random.Random(2)
    rows, labels = [], []
    # Three decent verifiers (80%) and one at chance: agreement finds the latter.
    for _ in range(600):
        label = rng.random() < 0.5
        row = []
        for accuracy in (0.8, 0.8, 0.8, 0.5):
            says = label if rng.random() < accuracy else not label
            row.append(0.9 if says else 0.1)
        rows.append(row)
        labels.append(label)
    weights = fit_without_labels(("a", "b", "c", "chance"), rows)
    assert all(w > 0.5 for w in weights.weights[:3])
    assert abs(weights.weights[3]) < 0.3
    assert _accuracy(weights, rows, labels) >= 0.85


def test_fits_reject_rows_of_the_wrong_width_and_too_few_verifiers() -> None:
    with pytest.raises(ValueError, match="sample 0 has 1 scores for 4 verifiers"):
        fit_with_labels(NAMES, [[0.5]], [True])
    with pytest.raises(ValueError, match="at least three"):
        fit_without_labels(("a", "b"), [[0.1, 0.2]])


def test_an_anchored_label_free_fit_only_breaks_the_anchors_ties() -> None:
    """Vote shares of 3/8, 3/8 and 2/8: the other verifiers pick between the
    two tied answers, and never lift the answer with fewer votes above them."""
    names = ("vote-share", "a", "b", "c")
    rows = [[3 / 8, 0.2, 0.3, 0.2], [3 / 8, 0.9, 0.8, 0.9], [2 / 8, 1.0, 1.0, 1.0]]
    weights = fit_without_labels(names, [*rows, *rows], anchor="vote-share")
    scores = [weights.score(row) for row in rows]
    assert scores[1] > scores[0] > scores[2]
    with pytest.raises(ValueError, match="anchor 'votes' is not among"):
        fit_without_labels(names, rows, anchor="votes")
