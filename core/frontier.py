"""Snell et al.'s compute-optimal rule over recorded measurements.

For each difficulty bin and token budget: among the strategies whose mean
tokens fit the budget, take the best accuracy, and of those within
``tolerance`` of it the cheapest. Where no strategy beats the vote, or the
bin has too few questions to trust, the vote is kept (a sparse bin borrows
its nearest neighbour's choice first, the easier one on a tie). Pure data
in, data out, for the calibration that fits ``auto``'s policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

VOTE = "self_consistency"


@dataclass(frozen=True)
class Measurement:
    strategy: str
    """A strategy and size, such as ``best_of_n@8``."""
    accuracy: float
    tokens: float
    """Mean completion tokens a question."""
    questions: int


@dataclass(frozen=True)
class Pick:
    """What the rule picked for a bin and budget, and why."""

    strategy: str
    reason: str
    measurement: Measurement | None


def choose(measurements: Sequence[Measurement], budget: float, *,
           tolerance: float = 0.0, min_questions: int = 5) -> Pick | None:
    """The cheapest strategy within ``tolerance`` of the best accuracy that
    fits ``budget``; None when the bin has fewer than ``min_questions``."""
    fitting = [m for m in measurements if m.tokens <= budget and m.questions >= min_questions]
    if not fitting:
        return None
    best = max(m.accuracy for m in fitting)
    cheapest = min((m for m in fitting if m.accuracy >= best - tolerance), key=lambda m: m.tokens)
    votes = [m for m in fitting if m.strategy.startswith(VOTE)]
    if votes and cheapest.accuracy <= max(v.accuracy for v in votes):
        vote = min((v for v in votes if v.accuracy >= cheapest.accuracy), key=lambda m: m.tokens)
        return Pick(vote.strategy, "nothing beats the vote", vote)
    return Pick(cheapest.strategy, "best accuracy for its tokens", cheapest)


def choose_per_bin(bins: Mapping[int, Sequence[Measurement]], budget: float, *,
                   tolerance: float = 0.0, min_questions: int = 5,
                   fallback: str = f"{VOTE}@4") -> dict[int, Pick]:
    """One choice per bin (bins ordered easy to hard). A sparse bin takes
    the choice of its nearest neighbour that has one, else ``fallback``."""
    own = {b: choose(m, budget, tolerance=tolerance, min_questions=min_questions)
           for b, m in bins.items()}
    chosen: dict[int, Pick] = {}
    for b, choice in own.items():
        if choice is not None:
            chosen[b] = choice
            continue
        neighbours = sorted((abs(other - b), other) for other, c in own.items() if c is not None)
        if neighbours:
            borrowed = own[neighbours[0][1]]
            assert borrowed is not None
            chosen[b] = Pick(borrowed.strategy, f"too few questions: bin {neighbours[0][1]}'s",
                               borrowed.measurement)
        else:
            chosen[b] = Pick(fallback, "too few questions anywhere: the vote", None)
    return chosen
