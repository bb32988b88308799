"""``ponder calibrate``'s fit and report on recorded measurements (no
engine): easy questions (the samples agree, and are right) and hard ones
(few right samples, which only the step checker recognises, and a search
that finds the answer)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from ponder.bench.calibrate import (
    SAMPLES,
    Question,
    Records,
    RecordsError,
    grid_runs,
    load_questions,
    request_body,
)
from ponder.bench.calibrate_cli import _policy_file
from ponder.bench.calibrate_fit import (
    as_reported,
    as_weights,
    fit,
    held_out_report,
    questions_from,
    split,
)
from ponder.core.fingerprint import ModelIdentity
from ponder.core.policy import parse_policy
from ponder.prm.combination import Weights
from ponder.strategies.registry import policy_strategies

GRID = ["particle_filtering@16"]
MODEL = ModelIdentity("smollm2", "0123456789abcdef")


def _sample(rng: random.Random, right: bool, answer: str) -> dict[str, Any]:
    return {"answer": answer, "tokens": rng.randint(40, 80), "correct": right,
            "parts": {"step-checker": rng.uniform(0.7, 1.0) if right else rng.uniform(0, 0.5),
                      "trace-confidence": rng.uniform(0.3, 0.7),
                      "self-certainty": rng.uniform(0.3, 0.7),
                      "mean-logprob": rng.uniform(0.3, 0.7), "vote-share": 0.0}}


def _records(count: int = 80, seed: int = 1) -> dict[tuple[str, str], dict[str, Any]]:
    rng = random.Random(seed)
    records: dict[tuple[str, str], dict[str, Any]] = {}
    for index in range(count):
        key, easy = f"q{index}", index % 2 == 0
        samples = [
            _sample(rng, True, "7") if easy or rng.random() < 0.2
            else _sample(rng, False, str(rng.randint(10, 99)))
            for _ in range(16)
        ]
        records[key, SAMPLES] = {"key": key, "run": SAMPLES, "samples": samples}
        records[key, GRID[0]] = {"key": key, "run": GRID[0], "correct": easy or rng.random() < 0.5,
                                 "tokens": rng.randint(900, 1200)}
    return records


def test_the_fit_trusts_the_probe_on_easy_questions_and_the_checker_on_hard_ones() -> None:
    train, held_out = split(questions_from(_records()), 0.7, seed=0)
    result = fit(train, GRID, "test", MODEL)
    weights = dict(zip(result.combined.names, result.combined.weights))
    assert weights["step-checker"] > max(abs(weights[n]) for n in
                                         ("trace-confidence", "self-certainty", "mean-logprob"))
    # Agreement in the probe means an easy question.
    assert result.policy.difficulty["agreement"] > 0
    table = {row["run"]: row for row in held_out_report(held_out, GRID, result)}
    assert table["bon[combined]@16"]["accuracy"] >= table["self_consistency@16"]["accuracy"]
    assert table["bon[combined]@16"]["accuracy"] <= table["pass@16"]["accuracy"]
    assert table["auto@16"]["tokens"] < table["best_of_n@16"]["tokens"]
    # The policy file reads back as the server would read it.
    policy = parse_policy(_policy_file(result, {"table": list(table.values())}), "test",
                          policy_strategies())
    assert policy.bins[-1].upper == 1.0 and set(policy.verifiers) == {"combined", "reward-free"}


def test_label_free_weights_also_favour_the_checker_over_noise() -> None:
    train, _ = split(questions_from(_records()), 0.7, seed=0)
    unlabelled = fit(train, GRID, "test", MODEL).combined_unlabelled
    weights = dict(zip(unlabelled.names, unlabelled.weights))
    assert weights["step-checker"] > weights["self-certainty"]


def test_records_resume_where_they_stopped(tmp_path: Path) -> None:
    records = Records(tmp_path / "records.jsonl", MODEL)
    records.add({"key": "a", "run": SAMPLES, "samples": []})
    records.add({"key": "b", "run": GRID[0], "correct": True, "tokens": 3})
    again = Records(tmp_path / "records.jsonl", MODEL)
    assert set(again.done) == {("a", SAMPLES), ("b", GRID[0])}
    assert again.done["a", SAMPLES]["model"] == MODEL.as_json()


def test_records_of_another_model_are_refused(tmp_path: Path) -> None:
    Records(tmp_path / "records.jsonl", MODEL).add({"key": "a", "run": SAMPLES, "samples": []})
    with pytest.raises(RecordsError, match="holds measurements of model .*own --work folder"):
        Records(tmp_path / "records.jsonl", ModelIdentity("other", "fedcba9876543210"))


def test_a_line_cut_off_by_a_killed_run_is_dropped(tmp_path: Path, caplog) -> None:
    path = tmp_path / "records.jsonl"
    records = Records(path, MODEL)
    records.add({"key": "a", "run": SAMPLES, "samples": []})
    with path.open("a") as out:
        out.write('{"key": "b", "run": "samp')  # killed mid-write
    again = Records(path, MODEL)
    assert set(again.done) == {("a", SAMPLES)} and "cut off" in caplog.text
    again.add({"key": "b", "run": SAMPLES, "samples": []})  # appends onto a whole line
    assert set(Records(path, MODEL).done) == {("a", SAMPLES), ("b", SAMPLES)}


def test_a_broken_line_before_the_last_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"key": \n' + json.dumps({"key": "a", "run": SAMPLES,
                                                "model": MODEL.as_json()}) + "\n")
    with pytest.raises(RecordsError, match="line 1 is not JSON"):
        Records(path, MODEL)


def test_questions_come_from_files_and_generated_sets(tmp_path: Path) -> None:
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"question": "1 + 1?", "answer": "x\n#### 2"}) + "\n")
    questions = load_questions([str(data), "gen:one-op:3:5"])
    assert [q.answer for q in questions][0] == "2" and len(questions) == 4
    assert len({q.key for q in questions}) == 4


def test_a_request_is_what_auto_runs() -> None:
    question = Question("k", "2 + 2?", "4")
    samples = request_body("m", question, SAMPLES, 3, 160)["strategy"]
    search = request_body("m", question, "beam_search@16", 3, 160)["strategy"]
    assert samples == {"name": "best_of_n", "n": 16, "prm": "combined"}
    # The prompt and step delimiter are left to the server's defaults.
    assert search == {"name": "beam_search", "beam_width": 4, "expand": 4}


def test_a_grid_may_hold_the_cheaper_strategies_checked_before_any_run() -> None:
    grid = grid_runs(["particle_filtering@16", " self_consistency@16?first=4",
                      "best_of_n@16?prune_every=32&prune_keep=0.5"])
    assert grid[1:] == ["self_consistency@16?first=4",
                        "best_of_n@16?prune_every=32&prune_keep=0.5"]
    question = Question("k", "2 + 2?", "4")
    assert request_body("m", question, grid[1], 3, 160)["strategy"] == {
        "name": "self_consistency", "n": 16, "first": 4}
    # It draws its own samples: the server's scorer, not the probe's.
    assert request_body("m", question, grid[2], 3, 160)["strategy"] == {
        "name": "best_of_n", "n": 16, "prune_every": 32, "prune_keep": 0.5}
    with pytest.raises(ValueError, match="first"):
        grid_runs(["self_consistency@4?first=8"])
    # The hidden-state probe as the verifier of a choice that reuses the
    # probe's samples, or as a search's weights.
    probed = grid_runs(["best_of_n@8?prm=probe", "particle_filtering@16?prm=probe"])
    assert [request_body("m", question, run, 3, 160)["strategy"]["prm"] for run in probed] == [
        "probe", "probe"]


def test_a_cheaper_choice_is_measured_and_can_be_picked() -> None:
    short = "self_consistency@16?first=4"
    records = _records()
    for (key, run), row in list(records.items()):
        if run == SAMPLES:
            records[key, short] = {"key": key, "run": short, "correct": row["samples"][0][
                "correct"], "tokens": 300}
    train, held_out = split(questions_from(records), 0.7, seed=0)
    result = fit(train, [*GRID, short], "test", MODEL)
    measured = {m.strategy for bin_ in result.bins for m in bin_}
    assert short in measured
    table = {row["run"]: row for row in held_out_report(held_out, [*GRID, short], result)}
    assert short in table


def test_a_choice_that_stops_early_is_filed_under_the_budget_its_tokens_fit() -> None:
    """A pruned best-of-32 that is always right and spends eight samples'
    worth of tokens (twelve with the probe's) is the choice at 16, though
    it starts 32 samples; at 8 it does not fit."""
    pruned = "best_of_n@32?prune_every=16"
    records = _records()
    for (key, run), row in list(records.items()):
        if run == SAMPLES:
            worth = 8 * sum(s["tokens"] for s in row["samples"]) // len(row["samples"])
            records[key, pruned] = {"key": key, "run": pruned, "correct": True, "tokens": worth}
    train, held_out = split(questions_from(records), 0.7, seed=0)
    result = fit(train, [*GRID, pruned], "test", MODEL)
    hard = result.policy.bins[-1]
    assert str(hard.choices[16]) == pruned and str(hard.choices[8]) != pruned
    policy = parse_policy(_policy_file(result, {}), "test", policy_strategies())
    choice = policy.bins[-1].choice_within(16, probe_size=4)
    assert choice is not None and choice.stops_early and str(choice) == pruned
    table = {row["run"]: row for row in held_out_report(held_out, [*GRID, pruned], result)}
    assert table["auto@16"]["accuracy"] > table["best_of_n@16"]["accuracy"]


@pytest.mark.parametrize(("intervals", "adopted"), [
    ({"one-op": [-0.15, -0.01], "two-op": [-0.08, 0.04]}, False),  # the shipped probe's
    ({"one-op": [-0.02, 0.06], "two-op": [0.01, 0.09]}, False),
    ({"one-op": [0.0, 0.06], "two-op": [0.01, 0.09]}, True),
])
def test_the_combined_verifier_takes_the_probe_in_only_where_it_picked_better(
    tmp_path: Path, intervals: dict[str, list[float]], adopted: bool,
) -> None:
    from ponder.bench.calibrate_cli import _weigh_probe
    from ponder.prm.probe_file import PROBE_KEY

    with_probe = {"bias": -3.0, "step-checker": 2.0, "probe": 7.0}
    probe_file = tmp_path / "policy-probe.json"
    probe_file.write_text(json.dumps({"report": {
        "samples": 8, "combined+probe weights": with_probe,
        "paired": {source: {"combined+probe - combined": {"difference": sum(ci) / 2, "ci95": ci,
                                                           "questions": 60}}
                   for source, ci in intervals.items()}}}))
    train, _ = split(questions_from(_records()), 0.7, seed=0)
    policy = _policy_file(fit(train, GRID, "test", MODEL), {})
    without = dict(policy["verifiers"]["combined"])
    _weigh_probe(policy, probe_file)
    assert policy[PROBE_KEY] == "policy-probe.json"
    assert policy["verifiers"]["combined"] == (with_probe if adopted else without)
    assert policy["report"]["probe_in_combined"]["adopted"] is adopted
    parse_policy(policy, "test", policy_strategies())


def test_a_policy_refit_without_a_probe_keeps_the_one_it_named(tmp_path: Path) -> None:
    from ponder.bench.calibrate_cli import _probe_named
    from ponder.prm.probe_file import PROBE_KEY

    policy = tmp_path / "policy.json"
    assert _probe_named(policy) is None
    policy.write_text(json.dumps({PROBE_KEY: "policy-probe.json"}))
    assert _probe_named(policy) is None  # named, but not there
    (tmp_path / "policy-probe.json").write_text("{}")
    assert _probe_named(policy) == tmp_path / "policy-probe.json"


def test_the_report_prints_a_policy_and_plots_it(tmp_path: Path, capsys) -> None:
    from ponder.server.cli import main

    train, held_out = split(questions_from(_records()), 0.7, seed=0)
    result = fit(train, GRID, "test", MODEL)
    path = tmp_path / "policy.json"
    table = held_out_report(held_out, GRID, result)
    path.write_text(json.dumps(_policy_file(result, {"held_out": len(held_out), "table": table})))
    main(["calibrate", "--report", str(path)])
    printed = capsys.readouterr().out
    assert "bin 1" in printed and "auto@16" in printed and "bon[combined]@8" in printed
    assert path.with_suffix(".png").stat().st_size > 0


def test_served_weights_are_numbers_and_only_the_report_names_an_anchor() -> None:
    plain = Weights(("step-checker", "vote-share"), (2.0, 1.0), bias=-1.0)
    anchored = Weights(("step-checker", "vote-share"), (0.5, 0.5), anchor="vote-share")
    assert as_weights(plain) == {"bias": -1.0, "step-checker": 2.0, "vote-share": 1.0}
    assert as_reported(plain) == as_weights(plain)
    assert as_reported(anchored) == {"bias": 0.0, "step-checker": 0.5, "vote-share": 0.5,
                                     "anchor": "vote-share"}
    with pytest.raises(ValueError, match="anchored"):
        as_weights(anchored)  # plain weights would drop what decides


def test_a_refit_reads_the_model_from_the_records(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    with pytest.raises(RecordsError, match="no measurements"):
        Records.model_of(path)
    Records(path, MODEL).add({"key": "a", "run": SAMPLES, "samples": []})
    assert Records.model_of(path) == MODEL
