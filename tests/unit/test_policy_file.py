"""A malformed policy file is a clear error naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ponder.core.policy import PolicyError, load_policy, parse_policy, probe_signals

GOOD = {"probe": {"samples": 4, "answer_below": 0.2},
        "difficulty": {"bias": 0.0, "agreement": 4.0, "length": -2.0},
        "bins": [{"upper": 0.3, "choices": {"16": "self_consistency@4"}},
                 {"upper": 1.0, "choices": {"8": "best_of_n@8", "16": "dvts@16"}}],
        "verifiers": {"combined": {"step-checker": 2.0, "bias": -1.0}}}


def test_a_good_policy_reads() -> None:
    policy = parse_policy(GOOD, "test")
    assert policy.bins[1].choices == {8: "best_of_n@8", 16: "dvts@16"}
    assert policy.verifiers["combined"]["bias"] == -1.0
    assert policy.probe.samples == 4


def test_difficulty_bins_and_budgets() -> None:
    policy = parse_policy(GOOD, "test")
    agreed = {"agreement": 1.0, "confidence": 0.5, "checker": 0.5, "length": 0.1}
    split = {**agreed, "agreement": 0.25, "length": 0.9}
    assert policy.difficulty_of(agreed) < 0.05 < 0.6 < policy.difficulty_of(split)
    assert policy.bin_of(policy.difficulty_of(agreed))[0] == 0
    index, hard = policy.bin_of(policy.difficulty_of(split))
    assert index == 1 and hard.choice_for(16) == "dvts@16"
    assert hard.choice_for(12) == "best_of_n@8" and hard.choice_for(4) is None


def test_probe_signals() -> None:
    signals = probe_signals(["2", "2.0", "3", None],
                            [{"trace-confidence": 0.8, "step-checker": 1.0},
                             {"trace-confidence": 0.6, "step-checker": 0.0}] * 2,
                            [64, 64, 128, 256], lambda a, b: float(a) == float(b))
    assert signals == {"agreement": 0.5, "confidence": pytest.approx(0.7), "checker": 0.5,
                       "length": pytest.approx(0.5)}


@pytest.mark.parametrize(("change", "field"), [
    (lambda p: p.pop("bins"), "'bins' is missing"),
    (lambda p: p["bins"][1].pop("choices"), "'bins[1].choices' is missing"),
    (lambda p: p["bins"][0].update(upper="low"), "'bins[0].upper' has the wrong type"),
    (lambda p: p["bins"][1].update(upper=0.1), "'bins[1].upper' must exceed"),
    (lambda p: p["bins"][0]["choices"].update(many="x"), "'bins[0].choices.many'"),
    (lambda p: p["verifiers"].update(combined={"x": "heavy"}), "'verifiers.combined'"),
    (lambda p: p["bins"][0]["choices"].update({"4": "best of n"}), "'bins[0].choices.4'"),
    (lambda p: p.pop("probe"), "'probe' is missing"),
    (lambda p: p["probe"].update(samples="four"), "'probe.samples' has the wrong type"),
    (lambda p: p["difficulty"].update(mood=1.0), "'difficulty.mood' is not a probe signal"),
])
def test_a_malformed_policy_names_the_field(change, field: str) -> None:
    data = json.loads(json.dumps(GOOD))
    change(data)
    with pytest.raises(PolicyError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(data, "test")


def test_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text("{bins")
    with pytest.raises(PolicyError, match="cannot be read as JSON"):
        load_policy(path)
