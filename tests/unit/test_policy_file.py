"""A malformed policy file is a clear error naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ponder.core.policy import PolicyError, load_policy, parse_policy

GOOD = {"bins": [{"upper": 0.3, "choices": {"16": "self_consistency@4"}},
                 {"upper": 1.0, "choices": {"16": "best_of_n@8"}}],
        "verifiers": {"combined": {"step-checker": 2.0, "bias": -1.0}}}


def test_a_good_policy_reads() -> None:
    policy = parse_policy(GOOD, "test")
    assert policy.bins[1].choices == {16: "best_of_n@8"}
    assert policy.verifiers["combined"]["bias"] == -1.0


@pytest.mark.parametrize(("change", "field"), [
    (lambda p: p.pop("bins"), "'bins' is missing"),
    (lambda p: p["bins"][1].pop("choices"), "'bins[1].choices' is missing"),
    (lambda p: p["bins"][0].update(upper="low"), "'bins[0].upper' has the wrong type"),
    (lambda p: p["bins"][1].update(upper=0.1), "'bins[1].upper' must exceed"),
    (lambda p: p["bins"][0]["choices"].update(many="x"), "'bins[0].choices.many'"),
    (lambda p: p["verifiers"].update(combined={"x": "heavy"}), "'verifiers.combined'"),
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
