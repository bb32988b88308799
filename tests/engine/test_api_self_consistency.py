"""self_consistency through the real server and engine."""

from __future__ import annotations

import json
from collections.abc import Iterable

import httpx
import openai

from .conftest import Server

QUESTION = [{"role": "user", "content": "What is 7 + 5?"}]


def _create(client: openai.OpenAI, **extra: object) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=48, temperature=0.7, seed=3,  # type: ignore[arg-type]
        extra_body={"include_candidates": True, **extra},
    )


def test_eight_counted_samples_and_the_majority_answer(client: openai.OpenAI) -> None:
    response = _create(client, strategy={"name": "self_consistency", "n": 8, "prompt": "direct"})
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    candidates = ponder["candidates"]
    assert ponder["samples"] == len(candidates) == 8
    votes = ponder["votes"]
    assert sum(votes.values()) <= 8
    assert sum(votes.values()) == sum(c["answer"] is not None for c in candidates)
    if votes:
        assert votes[ponder["answer"]] == max(votes.values())
        assert response.choices[0].message.content == ponder["answer"]
    assert response.usage is not None
    assert response.usage.completion_tokens == sum(c["tokens"] for c in candidates)
    assert ponder["strategy"]["n"] == 8 and ponder["strategy"]["prompt"] == "direct"


def piece_kinds(stream: Iterable[openai.types.chat.ChatCompletionChunk]) -> list[str]:
    """What each chunk of choice 0 carried: "reasoning", "content" or both."""
    kinds = []
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if (delta.model_extra or {}).get("reasoning_content"):
            kinds.append("reasoning")
        if delta.content:
            kinds.append("content")
    return kinds


def test_stream_shows_progress_before_the_answer(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="smollm2@self_consistency", messages=QUESTION, max_tokens=48,  # type: ignore[arg-type]
        temperature=0.7, stream=True, stream_options={"include_usage": True},
    )
    kinds = piece_kinds(stream)
    assert "reasoning" in kinds and "content" in kinds
    assert kinds.index("reasoning") < kinds.index("content")
    assert kinds[-1] == "content"


def test_hidden_stream_sends_comments_not_reasoning(server: Server) -> None:
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 32, "temperature": 0.7,
            "stream": True, "reasoning": "hidden",
            "strategy": {"name": "self_consistency", "n": 4}}
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json=body,
                      headers=server.headers(), timeout=120) as response:
        lines = [line for line in response.iter_lines() if line]
    comments = [line for line in lines if line.startswith(":")]
    data = [json.loads(line[6:]) for line in lines if line.startswith("data: {")]
    assert len(comments) >= 5  # the plan and one line per sample
    assert not any("reasoning_content" in c["choices"][0]["delta"] for c in data if c["choices"])
    assert lines[-1] == "data: [DONE]"


def test_early_stop_aborts_the_rest(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="smollm2", max_tokens=24, temperature=0.2, seed=1,
        messages=[{"role": "user", "content": "What is 2 + 2? Reply with the number only."}],
        extra_body={"strategy": {"name": "self_consistency", "n": 16, "prompt": "direct",
                                 "early_stop": True}, "include_candidates": True},
    )
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    finished = [c for c in ponder["candidates"] if c["finish_reason"] != "abort"]
    assert ponder["stopped_early"], ponder["votes"]
    assert len(finished) < 16
    assert max(ponder["votes"].values()) > 16 - len(finished)
    assert ponder["details"]["tokens_saved_estimate"] >= 0
    assert response.usage is not None
    assert response.usage.completion_tokens == sum(c["tokens"] for c in ponder["candidates"])


def test_a_token_budget_ends_the_run_with_what_it_has(client: openai.OpenAI) -> None:
    response = _create(client, strategy={"name": "self_consistency", "n": 8, "prompt": "direct"},
                       budget={"max_tokens": 40})
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    assert ponder["budget_exhausted"] is True
    assert response.usage is not None
    # The engine hands out tokens of all children together, so the last step
    # may carry up to one token per sample past the cap.
    assert 40 <= response.usage.completion_tokens < 40 + 8
    assert response.usage.completion_tokens == sum(c["tokens"] for c in ponder["candidates"])
