"""The hidden-state probe: its fit finds a signal that is there, its file
round-trips and names what is wrong with a bad one, it is refused on another
model, and as a scorer it reads every new step in one call."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from safetensors.numpy import save_file

from ponder.bench.probe_calibrate import served_layer_of
from ponder.bench.probe_fit import (
    FittedProbe,
    calibration,
    fit_logistic,
    fit_network,
    fit_probe,
    roc_auc,
)
from ponder.core.fingerprint import ModelIdentity
from ponder.core.scoring import ScorerFailed, Solution
from ponder.prm.hidden_states import RemoteReader, Rendered, at_step_ends
from ponder.prm.probe import ProbeScorer, needs_cut
from ponder.prm.probe_file import ProbeFile, ProbeFileError, ProbeWeights, read_probe, write_probe

WIDTH = 24
FIT_ON = ModelIdentity("m", "0123456789abcdef")


def synthetic(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Features whose label follows a known direction, plus the true
    probabilities and a group (question) per row."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(0).normal(size=WIDTH)
    features = rng.normal(size=(rows, WIDTH)) * rng.uniform(0.5, 3.0, WIDTH) + 5.0
    truth = 1 / (1 + np.exp(-((features - 5.0) @ direction / 2)))
    labels = rng.random(rows) < truth
    return features, labels, truth, np.arange(rows) // 8


def test_roc_auc_counts_ties_half_and_needs_both_classes() -> None:
    assert roc_auc([0.1, 0.9], [False, True]) == 1.0
    assert roc_auc([0.5, 0.5, 0.5], [False, True, True]) == 0.5
    assert roc_auc([0.2, 0.8, 0.4, 0.6], [True, False, True, False]) == 0.0
    assert roc_auc([0.3, 0.7], [True, True]) is None


@pytest.mark.parametrize("kind", ["logistic", "network"])
def test_the_fit_recovers_a_known_linear_signal(kind: str) -> None:
    features, labels, _, groups = synthetic(2000, seed=1)
    if kind == "logistic":  # with its penalty chosen on a slice of the groups
        weights = fit_probe(features, labels, groups, kind).weights
    else:
        weights = fit_network(features, labels, l2=10.0, epochs=200)
    test, test_labels, truth, _ = synthetic(2000, seed=2)
    best_possible = roc_auc(truth, test_labels)
    assert best_possible is not None and best_possible > 0.85
    assert roc_auc(weights.probability(test), test_labels) >= best_possible - 0.03
    error, _ = calibration(weights.probability(test), test_labels)
    assert error < 0.06


def test_the_logistic_fit_finds_the_direction() -> None:
    features, labels, _, _ = synthetic(4000, seed=3)
    weights = fit_logistic(features, labels, l2=1.0)
    matrix, _ = weights.layers[0]
    found = matrix[:, 0] / weights.scale  # back in the features' own units
    direction = np.random.default_rng(0).normal(size=WIDTH)
    cosine = found @ direction / np.linalg.norm(found) / np.linalg.norm(direction)
    assert cosine > 0.95


def _probe(features: np.ndarray, labels: np.ndarray, kind: str = "network") -> ProbeFile:
    weights = (fit_network(features, labels, 1.0, epochs=20) if kind == "network"
               else fit_logistic(features, labels, 1.0))
    return ProbeFile(FIT_ON, 30, "step-end", weights, {"command": "test"})


def test_the_probe_file_round_trips(tmp_path: Path) -> None:
    features, labels, _, _ = synthetic(500, seed=4)
    probe = _probe(features, labels)
    write_probe(probe, tmp_path / "probe.json")
    assert (tmp_path / "probe.safetensors").exists()
    again = read_probe(tmp_path / "probe.json")
    assert (again.model, again.layer, again.position, again.report) == (
        probe.model, probe.layer, probe.position, probe.report)
    np.testing.assert_allclose(again.weights.probability(features),
                               probe.weights.probability(features), rtol=1e-6)


@pytest.mark.parametrize(("edit", "field"), [
    (lambda d: d.pop("layer"), "'layer' is missing"),
    (lambda d: d.update(layer="thirty"), "'layer' must be a int"),
    (lambda d: d.update(layer=0), "'layer' must be at least 1"),
    (lambda d: d.update(position="middle"), "'position'"),
    (lambda d: d["model"].pop("fingerprint"), "'model.fingerprint'"),
    (lambda d: d.update(model="m"), "'model' must be an object"),
    (lambda d: d.update(format="ponder-probe/0"), "'format'"),
    (lambda d: d.update(weights="../elsewhere.safetensors"), "'weights'"),
    (lambda d: d.update(weights="missing.safetensors"), "'weights'"),
    (lambda d: d.update(report=[]), "'report'"),
])
def test_a_malformed_probe_file_names_the_field(tmp_path: Path, edit: object, field: str) -> None:
    features, labels, _, _ = synthetic(200, seed=5)
    write_probe(_probe(features, labels, "logistic"), tmp_path / "probe.json")
    data = json.loads((tmp_path / "probe.json").read_text())
    edit(data)  # type: ignore[operator]
    (tmp_path / "probe.json").write_text(json.dumps(data))
    with pytest.raises(ProbeFileError, match=field):
        read_probe(tmp_path / "probe.json")


@pytest.mark.parametrize(("tensors", "named"), [
    ({"scale": np.ones(4, np.float32), "w0": np.ones((4, 1), np.float32),
      "b0": np.zeros(1, np.float32)}, "'mean' is missing"),
    ({"mean": np.zeros(4, np.float32), "scale": np.ones(4, np.float32),
      "w0": np.ones((5, 1), np.float32), "b0": np.zeros(1, np.float32)}, "'w0'/'b0'"),
    ({"mean": np.zeros(4, np.float32), "scale": np.ones(4, np.float32),
      "w0": np.ones((4, 3), np.float32), "b0": np.zeros(3, np.float32)}, "3 outputs"),
])
def test_malformed_weights_name_the_tensor(tmp_path: Path, tensors: dict[str, np.ndarray],
                                           named: str) -> None:
    features, labels, _, _ = synthetic(200, seed=6)
    write_probe(_probe(features, labels, "logistic"), tmp_path / "probe.json")
    save_file(tensors, str(tmp_path / "probe.safetensors"))
    with pytest.raises(ProbeFileError, match=named):
        read_probe(tmp_path / "probe.json")


def test_a_probe_fit_on_another_model_is_refused() -> None:
    features, labels, _, _ = synthetic(200, seed=7)
    probe = _probe(features, labels, "logistic")
    probe.check_model(ModelIdentity("renamed", FIT_ON.fingerprint))  # same model, other name
    with pytest.raises(ProbeFileError, match="fit on 'm'.*not on the served model 'other'"):
        probe.check_model(ModelIdentity("other", "fedcba9876543210"))


def test_only_the_last_layer_is_read_without_a_cut(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 30}))
    assert not needs_cut(tmp_path, 30) and needs_cut(tmp_path, 12)
    for layer in (0, 31):
        with pytest.raises(ProbeFileError, match=f"'layer' is {layer}; the served model has 30"):
            needs_cut(tmp_path, layer)


def test_the_layer_served_validates_best_and_ties_go_to_the_shallower() -> None:
    weights = ProbeWeights(np.zeros(2, np.float32), np.ones(2, np.float32),
                           ((np.zeros((2, 1), np.float32), np.zeros(1, np.float32)),))
    losses = {6: 0.3301, 12: 0.3102, 18: 0.3098, 30: 0.3200}
    fits = {layer: FittedProbe(weights, 10.0, loss) for layer, loss in losses.items()}
    assert served_layer_of(fits) == 12  # 0.310 both: the cheaper layer
    fits[18] = FittedProbe(weights, 10.0, 0.3001)
    assert served_layer_of(fits) == 18


def test_step_end_rows_come_from_every_token_or_from_the_newlines() -> None:
    rendered = Rendered([5, 9, 7, 9, 8, 9], step_ends=[3, 5])  # 9 is the newline
    every_token = np.arange(6 * 2, dtype=np.float32).reshape(6, 2)
    np.testing.assert_array_equal(at_step_ends(rendered, every_token, 9, 2), every_token[[3, 5]])
    newlines_only = np.arange(3 * 2, dtype=np.float32)  # flat, as a remote answer comes
    np.testing.assert_array_equal(at_step_ends(rendered, newlines_only, 9, 2),
                                  [[2, 3], [4, 5]])
    with pytest.raises(Exception, match="not 2-wide rows"):
        at_step_ends(rendered, np.zeros(7, np.float32), 9, 2)


class _Renderer:
    newline_id = 0

    def render(self, question: str, steps: Sequence[str]) -> Rendered:
        ids = [1, 2]  # the prompt
        ends = []
        for step in steps:
            ids += [3] * len(step.split()) + [0]
            ends.append(len(ids) - 1)
        return Rendered(ids, ends)


class _Reader:
    """Each step's hidden state is [word count of the steps so far]."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    async def read(self, inputs: Sequence[Rendered]) -> list[np.ndarray]:
        self.calls.append(len(inputs))
        return [np.array([[sum(1 for t in r.token_ids[:end] if t == 3)] for end in r.step_ends],
                         dtype=np.float32) for r in inputs]


async def test_the_scorer_reads_every_new_step_of_every_candidate_in_one_call() -> None:
    weights = ProbeWeights(np.zeros(1, np.float32), np.ones(1, np.float32),
                           ((np.ones((1, 1), np.float32), np.full(1, -4.0, np.float32)),))
    reader = _Reader()
    scorer = ProbeScorer(ProbeFile(FIT_ON, 1, "step-end", weights), _Renderer(), reader)
    scored = await scorer.score("q", [
        Solution(("one two", "three four five six")),
        Solution(("a b c d e f", "g"), known=(0.25,)),
        Solution(("done",), known=(0.5,)),
    ])
    assert reader.calls == [2]  # the third has no new step
    sigmoid = lambda x: 1 / (1 + np.exp(-x))
    assert scored.scores[0] == pytest.approx([sigmoid(2 - 4), sigmoid(6 - 4)])
    assert scored.scores[1] == pytest.approx([0.25, sigmoid(7 - 4)])
    assert scored.scores[2] == [0.5]
    assert scored.tokens == (2 + 2 + 1 + 4 + 1) + (2 + 6 + 1 + 1 + 1)
    assert scorer.aggregate == "last"


def test_a_malformed_probe_stops_the_server_before_its_engine_starts(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from ponder.server.config import Settings

    features, labels, _, _ = synthetic(200, seed=8)
    write_probe(_probe(features, labels, "logistic"), tmp_path / "probe.json")
    assert Settings(probe=str(tmp_path / "probe.json")).probe_path == tmp_path / "probe.json"
    assert Settings(probe="none").probe_path is None
    with pytest.raises(ValidationError, match="needs --probe-url"):
        Settings(probe=str(tmp_path / "probe.json"), engine="remote",
                 engine_url="http://127.0.0.1:9")
    data = json.loads((tmp_path / "probe.json").read_text())
    del data["position"]
    (tmp_path / "probe.json").write_text(json.dumps(data))
    with pytest.raises(ValidationError, match="field 'position' is missing"):
        Settings(probe=str(tmp_path / "probe.json"))


def _pooling_server(rows_of: str, seen: list[dict]) -> httpx.MockTransport:
    """vLLM's /pooling as a server with ALL (every token) or STEP (newline
    tokens) pooling answers it: row r of an input is [r, r] (float32, base64)."""
    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        data = []
        for index, ids in enumerate(body["input"]):
            count = len(ids) if rows_of == "ALL" else ids.count(0)
            rows = np.repeat(np.arange(count, dtype="<f4")[:, None], 2, axis=1)
            data.append({"index": index, "object": "pooling",
                         "data": base64.b64encode(rows.tobytes()).decode()})
        return httpx.Response(200, json={"data": data[::-1], "usage": {"prompt_tokens": 1}})
    return httpx.MockTransport(handle)


@pytest.mark.parametrize("pooling", ["ALL", "STEP"])
async def test_a_remote_pooling_server_reads_the_whole_batch_in_one_request(pooling: str) -> None:
    seen: list[dict] = []
    inputs = [Rendered([1, 2, 3, 0, 4, 0], [3, 5]), Rendered([1, 0, 5, 5, 0], [4])]
    async with httpx.AsyncClient(transport=_pooling_server(pooling, seen),
                                 base_url="http://pool") as client:
        rows = await RemoteReader(client, newline_id=0, width=2, model="m").read(inputs)
    assert len(seen) == 1 and seen[0]["task"] == "token_embed" and seen[0]["model"] == "m"
    assert seen[0]["use_activation"] is False
    if pooling == "ALL":  # rows are token positions
        assert rows[0][:, 0].tolist() == [3, 5] and rows[1][:, 0].tolist() == [4]
    else:  # rows are the newlines in order
        assert rows[0][:, 0].tolist() == [0, 1] and rows[1][:, 0].tolist() == [1]


async def test_a_remote_pooling_server_that_fails_is_a_scorer_failure() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(503))
    async with httpx.AsyncClient(transport=transport, base_url="http://pool") as client:
        with pytest.raises(ScorerFailed) as caught:
            await RemoteReader(client, 0, 2, None).read([Rendered([0], [0])])
    assert caught.value.reason == "unavailable"


def test_a_probe_comes_with_the_policy_that_names_it(tmp_path: Path) -> None:
    from ponder.prm.probe_file import PROBE_KEY
    from ponder.server.config import SHIPPED_POLICY, Settings

    policy = json.loads(SHIPPED_POLICY.read_text())
    features, labels, _, _ = synthetic(200, seed=9)
    write_probe(_probe(features, labels, "logistic"), tmp_path / "mine-probe.json")
    (tmp_path / "mine.json").write_text(json.dumps({**policy, PROBE_KEY: "mine-probe.json"}))
    assert Settings(policy=tmp_path / "mine.json").probe_path == tmp_path / "mine-probe.json"
    (tmp_path / "bare.json").write_text(json.dumps({k: v for k, v in policy.items()
                                                    if k != PROBE_KEY}))
    assert Settings(policy=tmp_path / "bare.json").probe_path is None
    assert Settings(policy=tmp_path / "mine.json", probe="none").probe_path is None


def test_a_combined_verifier_that_weighs_the_probe_needs_it_served(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from ponder.prm.probe_file import PROBE_KEY
    from ponder.server.config import SHIPPED_POLICY, Settings

    policy = json.loads(SHIPPED_POLICY.read_text())
    policy["verifiers"]["combined"] = {**policy["verifiers"]["combined"], "probe": 2.0}
    features, labels, _, _ = synthetic(200, seed=11)
    write_probe(_probe(features, labels, "logistic"), tmp_path / "mine-probe.json")
    (tmp_path / "mine.json").write_text(json.dumps({**policy, PROBE_KEY: "mine-probe.json"}))
    assert Settings(policy=tmp_path / "mine.json").probe_path == tmp_path / "mine-probe.json"
    with pytest.raises(ValidationError, match="verifiers.combined.probe"):
        Settings(policy=tmp_path / "mine.json", probe="none")


def test_a_probe_for_another_model_is_left_out_unless_the_operator_named_it(
    tmp_path: Path,
) -> None:
    from ponder.prm.probe import ProbeSetup
    from ponder.server.app import _probe_for
    from ponder.server.config import Settings

    features, labels, _, _ = synthetic(200, seed=10)
    write_probe(_probe(features, labels, "logistic"), tmp_path / "probe.json")
    setup = ProbeSetup(tmp_path / "probe.json", tmp_path, tmp_path / "cut")
    other = ModelIdentity("other", "fedcba9876543210")
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 24}))
    with pytest.raises(ProbeFileError, match="'layer' is 30; the served model has 24"):
        _probe_for(setup, Settings(probe=str(tmp_path / "probe.json")), FIT_ON)
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 30}))
    assert _probe_for(setup, Settings(), FIT_ON) is setup
    assert _probe_for(setup, Settings(), other) is None
    with pytest.raises(ProbeFileError, match="not on the served model 'other'"):
        _probe_for(setup, Settings(probe=str(tmp_path / "probe.json")), other)


def test_within_a_question_only_its_own_samples_are_ranked() -> None:
    from ponder.bench.probe_calibrate import within_question_auc
    from ponder.bench.probe_samples import StepRows

    # Question 0 is easy (both right), 1 and 2 each one right, one wrong.
    # The scores rank the easy question first, and within 1 and 2 the wrong
    # sample above the right one: a pooled AUC is high, within it is 0.
    steps = StepRows(question=np.array([0, 0, 1, 1, 2, 2]), sample=np.array([0, 1] * 3),
                     depth=np.ones(6, int), last=np.ones(6, bool),
                     label=np.array([True, True, True, False, True, False]), features={})
    scores = np.array([0.9, 0.9, 0.4, 0.5, 0.3, 0.35])
    assert roc_auc(scores, steps.label) > 0.5
    assert within_question_auc(scores, steps, np.ones(6, bool)) == {"auc": 0.0, "questions": 2}
