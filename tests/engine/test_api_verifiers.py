"""The verifier options through the real server and engine, with the openai
client: the grounded step checker's levels, the reward-free scorers, and
DeepConf offline and online (whose weak samples are stopped in the engine)."""

from __future__ import annotations

import math
from typing import Any

import httpx
import openai

from ponder.prm.step_checker import LEVELS

QUESTION = [{"role": "user", "content": "Tom has 3 bags with 4 apples each. How many apples?"}]


def _ponder(client: openai.OpenAI, strategy: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=48, temperature=0.8,  # type: ignore[arg-type]
        seed=extra.pop("seed", 11),
        extra_body={"strategy": strategy, "include_candidates": True, **extra},
    )
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    ponder["_usage"] = response.usage
    return ponder


def test_the_step_checker_names_the_level_of_every_step(client: openai.OpenAI) -> None:
    ponder = _ponder(client, {"name": "best_of_n", "n": 4, "prm": "step-checker",
                              "prompt": "direct"})
    names = {level.name: level.score for level in LEVELS}
    for candidate in ponder["candidates"]:
        assert len(candidate["step_labels"]) == len(candidate["step_scores"])
        for label, score in zip(candidate["step_labels"], candidate["step_scores"]):
            assert names[label] == score


def test_self_certainty_scores_from_the_samples_own_log_probabilities(
    client: openai.OpenAI,
) -> None:
    ponder = _ponder(client, {"name": "best_of_n", "n": 4, "prm": "self-certainty",
                              "aggregate": "mean", "prompt": "direct"})
    assert ponder["details"]["prm"] == "self-certainty"
    assert all(0.0 <= score < 1.0 for score in ponder["scores"])
    assert len(set(ponder["scores"])) > 1  # a continuous score tells samples apart
    assert ponder["_usage"].model_extra["scoring_tokens"] == 0  # no second pass over the text
    assert "step_labels" not in ponder["candidates"][0] or (
        ponder["candidates"][0]["step_labels"] is None)


def test_deepconf_offline_votes_with_the_most_confident_half(client: openai.OpenAI) -> None:
    ponder = _ponder(client, {"name": "self_consistency", "n": 8, "prompt": "direct",
                              "weighting": "confidence", "keep": 0.5,
                              "trace_confidence": "tail", "window": 8})
    answered = [c for c in ponder["candidates"] if c["answer"] is not None]
    assert all(math.isfinite(c["confidence"]) for c in ponder["candidates"])
    assert sum(ponder["votes"].values()) == math.ceil(len(answered) / 2)
    if ponder["answer"] is not None:
        assert ponder["votes"][ponder["answer"]] >= 1  # the winner had a kept voter


def test_deepconf_online_stops_weak_samples_in_the_engine(client: openai.OpenAI) -> None:
    plain = _ponder(client, {"name": "self_consistency", "n": 8, "prompt": "direct"}, seed=21)
    online = _ponder(client, {"name": "self_consistency", "n": 8, "prompt": "direct",
                              "online": True, "warmup": 2, "keep": 0.1, "window": 4,
                              "consensus": 0.99,
                              "weighting": "confidence"}, seed=21)
    details = online["details"]
    assert details["stopped_low_confidence"] >= 1
    assert online["stopped_early"] is True
    stopped = [c for c in online["candidates"] if c["finish_reason"] == "abort"]
    assert len(stopped) >= details["stopped_low_confidence"]
    usage = online["_usage"]
    assert usage.completion_tokens == sum(c["tokens"] for c in online["candidates"])
    assert usage.completion_tokens < plain["_usage"].completion_tokens


def test_inconsistent_deepconf_options_name_the_field(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={
        "model": "smollm2", "messages": QUESTION, "max_tokens": 8,
        "strategy": {"name": "self_consistency", "n": 4, "online": True, "warmup": 4}})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "strategy.warmup"
