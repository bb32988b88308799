"""One solution score from its step scores, the ways Snell et al. (2024) and
Hugging Face's search-and-learn compare them: ``last`` trusts the PRM's view
of the whole solution at its end, ``min`` says a chain is as good as its
weakest step, ``prod`` reads the scores as independent probabilities of each
step being right, and ``mean`` is the lenient average."""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import fmean
from typing import Literal

Aggregate = Literal["last", "min", "prod", "mean"]


def aggregate(step_scores: Sequence[float], how: Aggregate) -> float:
    """A solution with no steps scores 0.0: there is nothing that could be
    right in it, and it must never beat a solution that was actually checked."""
    if not step_scores:
        return 0.0
    if how == "last":
        return step_scores[-1]
    if how == "min":
        return min(step_scores)
    if how == "prod":
        return math.prod(step_scores)
    if how == "mean":
        return fmean(step_scores)
    raise ValueError(f"unknown aggregation {how!r}; use last, min, prod or mean")
