"""The four ways to fold step scores into one."""

from __future__ import annotations

import math

import pytest

from ponder.core.aggregate import aggregate

SCORES = [0.9, 0.5, 0.8]


@pytest.mark.parametrize(
    ("how", "expected"),
    [("last", 0.8), ("min", 0.5), ("prod", 0.9 * 0.5 * 0.8), ("mean", (0.9 + 0.5 + 0.8) / 3)],
)
def test_aggregate_modes(how: str, expected: float) -> None:
    assert math.isclose(aggregate(SCORES, how), expected)  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["last", "min", "prod", "mean"])
def test_no_steps_scores_zero_and_one_step_is_itself(how: str) -> None:
    assert aggregate([], how) == 0.0  # type: ignore[arg-type]
    assert aggregate([0.7], how) == pytest.approx(0.7)  # type: ignore[arg-type]


def test_aggregate_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown aggregation 'max'"):
        aggregate(SCORES, "max")  # type: ignore[arg-type]

