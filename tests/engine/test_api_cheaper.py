"""The same answer for less compute, through the real server and engine:
short-m@k, speculative rejection and early exit each answer, count what
they generated, stream progress before the answer, and stop the engine's
work when the client leaves."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from ..probes import leave_once_running
from .conftest import Server
from .test_api_self_consistency import piece_kinds

QUESTION = [{"role": "user", "content": "What is 7 + 5?"}]
SHORT = {"name": "self_consistency", "n": 8, "first": 3}
PRUNED = {"name": "best_of_n", "n": 8, "prune_every": 8, "prune_keep": 0.5}
EXIT = {"name": "cot", "early_exit": {"every": 16, "agree": 2}}


def _create(client: openai.OpenAI, strategy: dict[str, Any], max_tokens: int = 64,
            temperature: float = 0.7) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=max_tokens,  # type: ignore[arg-type]
        temperature=temperature, seed=5,
        extra_body={"include_candidates": True, "strategy": strategy},
    )


def test_short_m_at_k_votes_among_the_first_to_finish(client: openai.OpenAI) -> None:
    response = _create(client, SHORT)
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    candidates = ponder["candidates"]
    assert len(candidates) == 8 and sum(ponder["votes"].values()) <= 3
    if ponder["stopped_early"]:
        assert any(c["finish_reason"] == "abort" for c in candidates)
    assert response.usage is not None
    # Every token made counts, the aborted samples' partial ones too.
    assert response.usage.completion_tokens == sum(c["tokens"] for c in candidates)
    assert response.choices[0].message.content


def test_pruned_best_of_n_stops_the_lowest_at_checkpoints(client: openai.OpenAI) -> None:
    response = _create(client, PRUNED)
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    candidates = ponder["candidates"]
    pruned = [c for c in candidates if c.get("pruned_at") is not None]
    checkpoints = ponder["details"].get("checkpoints", [])
    if checkpoints:
        assert checkpoints[0]["tokens"] == 8
        assert len(pruned) == sum(len(c["pruned"]) for c in checkpoints) >= 4
        assert ponder["details"]["selected_index"] not in {
            i for c in checkpoints for i in c["pruned"]}
    assert response.usage is not None and response.usage.completion_tokens >= sum(
        c["tokens"] for c in candidates)
    assert response.choices[0].message.content is not None


def test_early_exit_counts_its_probes_apart_and_never_shows_them(client: openai.OpenAI) -> None:
    response = _create(client, EXIT, max_tokens=256, temperature=0.0)
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    assert "probe_tokens" in ponder["usage"]
    message = response.choices[0].message
    trace = (message.model_extra or {}).get("reasoning_content") or ""
    assert response.usage is not None
    assert response.usage.completion_tokens >= ponder["usage"]["probe_tokens"]
    if ponder["details"].get("early_exits"):
        assert ponder["usage"]["probe_tokens"] > 0
        assert trace.count("Answer:") == 0  # the probes' cues are not in the trace
    assert message.content is not None


@pytest.mark.parametrize("strategy", [SHORT, PRUNED, EXIT], ids=["short", "pruned", "exit"])
def test_progress_streams_before_the_answer(client: openai.OpenAI, strategy: dict[str, Any]) -> None:
    stream = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=96, temperature=0.7, seed=5,  # type: ignore[arg-type]
        stream=True, extra_body={"strategy": strategy},
    )
    kinds = piece_kinds(stream)
    assert "reasoning" in kinds
    if "content" in kinds:
        assert kinds.index("reasoning") < kinds.index("content")


@pytest.mark.parametrize("strategy", [
    {**SHORT, "n": 16, "first": 15},
    {**PRUNED, "n": 16, "prune_every": 400},
    {"name": "cot", "early_exit": {"every": 64, "agree": 8}},
], ids=["short", "pruned", "exit"])
async def test_a_client_that_leaves_stops_the_engine(
    server: Server, http: httpx.Client, strategy: dict[str, Any]
) -> None:
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 1500, "min_tokens": 1500,
            "temperature": 1.0, "strategy": strategy}
    assert await leave_once_running(server.base_url, server.headers(), http, body) == 0


def test_the_strategies_list_shows_the_new_parameters(http: httpx.Client) -> None:
    listed = {s["name"]: s for s in http.get("/v1/strategies").json()["data"]}
    assert "first" in listed["self_consistency"]["parameters"]["properties"]
    assert {"prune_every", "prune_keep"} <= set(listed["best_of_n"]["parameters"]["properties"])
    assert "early_exit" in listed["cot"]["parameters"]["properties"]
    assert "early_exit" in listed["none"]["parameters"]["properties"]
    presets = http.get("/v1/strategies").json()["presets"]
    assert presets["short-m@k"]["first"] == 4
    assert presets["early-exit"]["early_exit"]["every"] == 32
