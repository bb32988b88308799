"""The benchmark's paired comparison: two runs over the same questions,
their difference with its interval and their cost ratios; and the peers
comparison's vote key."""

from __future__ import annotations

import pytest

from ponder.bench.accuracy import RunResult, cheaper_runs, paired
from ponder.bench.peers import _projection


def _run(name: str, correct: list[bool], tokens: int, latency: float) -> dict[str, object]:
    run = RunResult(name, {})
    for index, right in enumerate(correct):
        run.correct.append(right)
        run.by_problem[index] = right
        run.any_correct.append(right)
        run.tokens.append(tokens)
        run.scoring_tokens.append(0)
        run.prompt_tokens.append(10)
        run.cached_tokens.append(0)
        run.latency_s.append(latency)
    run.wall_s = latency * len(correct)
    return run.summary()


def test_a_paired_difference_and_its_interval() -> None:
    old = _run("old", [True, False, True, False] * 30, tokens=100, latency=2.0)
    new = _run("new", [True, True, True, False] * 30, tokens=40, latency=1.0)
    compared = paired(new, old)
    assert compared["questions"] == 120
    assert compared["difference"] == pytest.approx(0.25)
    low, high = compared["ci95"]
    assert 0 < low < 0.25 < high
    assert compared["tokens_ratio"] == 0.4 and compared["latency_ratio"] == 0.5


def test_identical_runs_differ_by_nothing() -> None:
    run = _run("a", [True, False] * 60, tokens=10, latency=1.0)
    assert paired(run, run)["ci95"] == [0.0, 0.0]


def test_only_questions_both_answered_are_paired() -> None:
    old = _run("old", [True] * 10, tokens=1, latency=1.0)
    new = _run("new", [False] * 8, tokens=1, latency=1.0)
    assert paired(new, old)["questions"] == 8


def test_the_cheaper_runs_stand_beside_what_they_save_on() -> None:
    names = {run.name for run in cheaper_runs()}
    assert {"cheap-sc@16", "cheap-bon@16", "cheap-cot-long", "cheap-cot-exit"} <= names
    long = {run.name: run.max_tokens for run in cheaper_runs()}
    assert long["cheap-cot-long"] == long["cheap-cot-exit"] == 512


def test_its_hub_votes_on_extracted_answers() -> None:
    assert _projection("So 3 + 4 = 7.\nAnswer: 7") == _projection("The answer is 7.")
    assert _projection("no number here ") == "no number here"
