"""A policy file: read once, checked field by field, and turned into
decisions by the one rule ``auto`` and calibration share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ponder.core.policy import (
    NEUTRAL_ESCALATION,
    Choice,
    PolicyError,
    decide,
    load_policy,
    parse_choice,
    parse_policy,
    probe_signals,
    shown_source,
)
from ponder.strategies.registry import policy_strategies

STRATEGIES = policy_strategies()
GOOD = {"source": "ponder calibrate --data /home/someone/data/mine.jsonl:40",
        "model": {"name": "smollm2", "fingerprint": "e6a2a19ce9754bd1"},
        "probe": {"samples": 4, "answer_below": 0.2},
        "difficulty": {"bias": 0.0, "agreement": 4.0, "length": -2.0},
        "bins": [{"upper": 0.3, "choices": {"16": "self_consistency@4"}},
                 {"upper": 1.0, "choices": {"8": "best_of_n@8", "16": "dvts@16"}}],
        "verifiers": {"combined": {"step-checker": 2.0, "bias": -1.0}}}
AGREED = {"agreement": 1.0, "confidence": 0.5, "checker": 0.5, "length": 0.1}
SPLIT = {**AGREED, "agreement": 0.25, "length": 0.9}


def _policy(**changes: object):
    return parse_policy({**json.loads(json.dumps(GOOD)), **changes}, "test", STRATEGIES)


def test_a_good_policy_reads() -> None:
    policy = _policy()
    assert policy.bins[1].choices == {8: Choice("best_of_n", 8, reuses_probe=True),
                                      16: Choice("dvts", 16)}
    assert policy.verifiers["combined"]["bias"] == -1.0
    assert policy.probe.samples == 4 and policy.model.fingerprint == "e6a2a19ce9754bd1"


def test_choices_parse_once_with_their_options_and_reuse() -> None:
    vote = parse_choice("self_consistency@16?early_stop=true", STRATEGIES)
    assert vote == Choice("self_consistency", 16, (("early_stop", "true"),), reuses_probe=True)
    assert str(vote) == "self_consistency@16?early_stop=true"
    assert vote.cost(probe_size=4) == 16 and Choice("dvts", 16).cost(probe_size=4) == 20
    # The first to finish win, or the worst are stopped partway: the probe's
    # whole samples cannot be theirs, so these draw afresh and pay for it.
    short = parse_choice("self_consistency@16?first=4", STRATEGIES)
    pruned = parse_choice("best_of_n@16?prune_every=32&prune_keep=0.5", STRATEGIES)
    assert str(pruned) == "best_of_n@16?prune_every=32&prune_keep=0.5"
    assert pruned.options == (("prune_every", "32"), ("prune_keep", "0.5"))
    assert not short.reuses_probe and not pruned.reuses_probe
    assert short.cost(probe_size=4) == pruned.cost(probe_size=4) == 20
    for text, why in (("telepathy@4", "'telepathy' is not a strategy a policy can choose"),
                      ("best_of_n@8?prune_every", "name=value pairs"),
                      ("best_of_n@8?prune_every=8&&prune_keep=0.5", "name=value pairs"),
                      ("best_of_n@8?prune_every=8&prune_every=16", "names an option twice"),
                      ("best_of_n", "not a strategy and size")):
        with pytest.raises(ValueError, match=why):
            parse_choice(text, STRATEGIES)


def test_a_policy_may_choose_the_cheaper_strategies() -> None:
    policy = _policy(bins=[{"upper": 1.0, "choices": {
        "16": "self_consistency@16?first=4", "20": "best_of_n@16?prune_every=32"}}])
    assert policy.bins[0].choice_within(20, probe_size=4) == Choice(
        "best_of_n", 16, (("prune_every", "32"),), stops_early=True)
    # Each stops its samples early: the budget it is filed under is the one
    # its measured tokens fit, not the 16 it starts after the probe's 4.
    assert policy.bins[0].choice_within(16, probe_size=4) == Choice(
        "self_consistency", 16, (("first", "4"),), stops_early=True)
    assert policy.bins[0].choice_within(15, probe_size=4) is None


def test_difficulty_bins_and_budgets() -> None:
    policy = _policy()
    assert policy.difficulty_of(AGREED) < 0.05 < 0.6 < policy.difficulty_of(SPLIT)
    assert policy.bin_of(policy.difficulty_of(AGREED))[0] == 0
    index, hard = policy.bin_of(policy.difficulty_of(SPLIT))
    assert index == 1
    # dvts@16 after a probe of 4 costs 20 samples: not within 16, nor 19.
    assert hard.choice_within(16, probe_size=4) == Choice("best_of_n", 8, reuses_probe=True)
    assert hard.choice_within(20, probe_size=4) == Choice("dvts", 16)
    assert hard.choice_within(4, probe_size=4) is None


def test_decide_is_the_policy_within_the_budget() -> None:
    policy = _policy()
    easy = decide(policy, AGREED, 16, probe_size=4)
    assert easy.choice is None and "trusted" in easy.why and easy.bin == 0
    hard = decide(policy, SPLIT, 20, probe_size=4)
    assert hard.choice == Choice("dvts", 16) and hard.bin == 1
    assert decide(policy, SPLIT, 16, probe_size=4).choice == Choice("best_of_n", 8,
                                                                    reuses_probe=True)
    # A pooled choice no bigger than the probe adds nothing: the probe answers.
    assert decide(policy, SPLIT, 8, probe_size=8).choice is None


def test_the_model_neutral_rule() -> None:
    assert decide(None, AGREED, 16, probe_size=4).choice is None
    split = decide(None, SPLIT, 16, probe_size=4)
    assert split.choice == Choice(NEUTRAL_ESCALATION, 16, reuses_probe=True)
    assert split.difficulty is None and "disagree" in split.why
    assert decide(None, SPLIT, 4, probe_size=4).choice is None


def test_probe_signals_group_by_the_votes_rule() -> None:
    signals = probe_signals(["2", "2.0", "3", None],
                            [{"trace-confidence": 0.8, "step-checker": 1.0},
                             {"trace-confidence": 0.6, "step-checker": 0.0}] * 2,
                            [64, 64, 128, 256])
    assert signals == {"agreement": 0.5, "confidence": pytest.approx(0.7), "checker": 0.5,
                       "length": pytest.approx(0.5)}


def test_clients_see_data_by_file_name() -> None:
    assert shown_source(GOOD["source"]) == "ponder calibrate --data mine.jsonl:40"


@pytest.mark.parametrize(("change", "field"), [
    (lambda p: p.pop("bins"), "'bins' is missing"),
    (lambda p: p.pop("model"), "'model' is missing"),
    (lambda p: p["model"].pop("fingerprint"), "'model.fingerprint'"),
    (lambda p: p["bins"][1].pop("choices"), "'bins[1].choices' is missing"),
    (lambda p: p["bins"][0].update(upper="low"), "'bins[0].upper' has the wrong type"),
    (lambda p: p["bins"][0].update(upper=float("nan")), "'bins[0].upper' must be a finite"),
    (lambda p: p["bins"][1].update(upper=0.1), "'bins[1].upper' must exceed"),
    (lambda p: p["bins"][0]["choices"].update(many="x"), "'bins[0].choices.many'"),
    (lambda p: p["verifiers"].update(combined={"x": "heavy"}), "'verifiers.combined.x'"),
    (lambda p: p["verifiers"]["combined"].update(bias=float("nan")),
     "'verifiers.combined.bias' must be a finite"),
    (lambda p: p["difficulty"].update(agreement=float("inf")),
     "'difficulty.agreement' must be a finite"),
    (lambda p: p["bins"][0]["choices"].update({"4": "best of n"}), "'bins[0].choices.4'"),
    (lambda p: p["bins"][0]["choices"].update({"4": "telepathy@4"}),
     "'bins[0].choices.4': 'telepathy' is not a strategy"),
    (lambda p: p.pop("probe"), "'probe' is missing"),
    (lambda p: p["probe"].update(samples="four"), "'probe.samples' has the wrong type"),
    (lambda p: p["probe"].update(answer_below=float("nan")),
     "'probe.answer_below' must be a finite"),
    (lambda p: p["difficulty"].update(mood=1.0), "'difficulty.mood' is not a probe signal"),
])
def test_a_malformed_policy_names_the_field(change, field: str) -> None:
    data = json.loads(json.dumps(GOOD))
    change(data)
    with pytest.raises(PolicyError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(data, "test", STRATEGIES)


def test_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text("{bins")
    with pytest.raises(PolicyError, match="policy policy.json: cannot be read as JSON"):
        load_policy(path, STRATEGIES)
