"""best_of_n through the real server and engine, with the step checker and
the self-judging PRM that the server starts with by default."""

from __future__ import annotations

import httpx
import openai
import pytest

QUESTION = [{"role": "user", "content": "Tom has 3 bags with 4 apples each. How many apples?"}]


def _ponder(client: openai.OpenAI, strategy: dict, **extra: object) -> dict:
    response = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=64, temperature=0.8, seed=5,  # type: ignore[arg-type]
        extra_body={"strategy": strategy, "include_candidates": True, **extra},
    )
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    ponder["_usage"] = response.usage
    ponder["_content"] = response.choices[0].message.content
    return ponder


def test_step_checker_picks_the_best_scored_sample(client: openai.OpenAI) -> None:
    ponder = _ponder(client, {"name": "best_of_n", "n": 4, "prm": "step-checker"})
    candidates = ponder["candidates"]
    assert len(candidates) == len(ponder["scores"]) == 4
    for candidate, score in zip(candidates, ponder["scores"]):
        assert candidate["score"] == score
        assert all(0.0 <= s <= 1.0 for s in candidate["step_scores"])
        assert score == min(candidate["step_scores"], default=0.0)
    best = ponder["details"]["selected_index"]
    assert ponder["scores"][best] == max(ponder["scores"])
    assert ponder["answer"] == candidates[best]["answer"]
    assert ponder["details"]["prm"] == "step-checker"
    usage = ponder["_usage"]
    assert usage.completion_tokens == sum(c["tokens"] for c in candidates)
    assert usage.model_extra["scoring_tokens"] == 0  # a rule-based checker reads no tokens


def test_self_judge_scores_with_the_policy_model(client: openai.OpenAI) -> None:
    ponder = _ponder(client, {"name": "best_of_n", "n": 2, "prm": "self-judge",
                              "weighted_vote": True, "prompt": "direct"})
    assert len(ponder["scores"]) == 2
    assert all(0.0 <= s <= 1.0 for s in ponder["scores"])
    assert ponder["_usage"].model_extra["scoring_tokens"] > 0


def test_unknown_prm_names_the_field(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={
        "model": "smollm2", "messages": QUESTION, "max_tokens": 8,
        "strategy": {"name": "best_of_n", "n": 2, "prm": "oracle"}})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "strategy.prm"


@pytest.mark.parametrize("reasoning", ["visible", "hidden"])
def test_streaming_best_of_n(client: openai.OpenAI, reasoning: str) -> None:
    chunks = list(client.chat.completions.create(
        model="smollm2@best_of_n", messages=QUESTION, max_tokens=48,  # type: ignore[arg-type]
        temperature=0.8, stream=True, extra_body={"reasoning": reasoning},
    ))
    reasoning_text = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in chunks if c.choices)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert ("Scores:" in reasoning_text) is (reasoning == "visible")
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    answer = final[-1].model_extra["ponder"].get("answer")  # type: ignore[index]
    if answer is not None:
        assert content == answer
