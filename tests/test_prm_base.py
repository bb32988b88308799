"""Step splitting and the four ways to fold step scores into one."""

from __future__ import annotations

import math

import pytest

from ponder.prm.aggregate import aggregate
from ponder.prm.base import split_steps

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


def test_split_steps_drops_empty_and_strips() -> None:
    text = "\n\nFirst, 2 + 2 = 4.\n\n\n\n  \n\nThen 4 * 3 = 12.\nSo 12.\n\n"
    assert split_steps(text) == ["First, 2 + 2 = 4.", "Then 4 * 3 = 12.\nSo 12."]


def test_split_steps_without_delimiter_is_one_step() -> None:
    assert split_steps("The answer is 7.") == ["The answer is 7."]
    assert split_steps("") == []
    assert split_steps("a ## b ## ", delimiter="##") == ["a", "b"]
