"""beam_search and dvts through the real server and engine, scored by the
step checker the server starts with."""

from __future__ import annotations

import httpx
import openai
import pytest

from ..probes import leave_once_running
from .conftest import Server

QUESTION = [{"role": "user", "content": "Tom has 3 bags with 4 apples each and eats 2. "
             "How many apples are left?"}]
SEARCH = {"prm": "step-checker", "max_steps": 3, "step_delimiter": "\n"}


def _search(client: openai.OpenAI, strategy: dict, **extra: object) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=96, temperature=0.8, seed=3,  # type: ignore[arg-type]
        extra_body={"strategy": strategy, "include_candidates": True, **extra},
    )


@pytest.mark.parametrize(
    "strategy",
    [{"name": "beam_search", "beam_width": 2, "expand": 2, **SEARCH},
     {"name": "dvts", "n": 4, "expand": 2, **SEARCH}],
    ids=["beam_search", "dvts"],
)
def test_search_answers_with_its_best_path_and_returns_the_tree(
    client: openai.OpenAI, strategy: dict
) -> None:
    response = _search(client, strategy)
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    tree = ponder["tree"]
    assert ponder["samples"] == len(tree)  # every step drawn, kept or pruned
    ids = {node["id"] for node in tree}
    assert all(node["parent"] is None or node["parent"] in ids for node in tree)
    assert all(0.0 <= node["score"] <= 1.0 for node in tree)
    assert max(node["depth"] for node in tree) <= 3
    first_round = [node for node in tree if node["depth"] == 1]
    assert len(first_round) == 4 and sum(node["kept"] for node in first_round) == 2
    chosen = ponder["candidates"][ponder["details"]["selected_index"]]
    assert ponder["details"]["prm"] == "step-checker"
    assert chosen["score"] == max(c["score"] for c in ponder["candidates"])
    message = response.choices[0].message
    assert message.model_extra["reasoning_content"] == chosen["text"]  # type: ignore[index]
    usage = response.usage
    assert usage is not None
    # Every step generated, kept or pruned, was paid for (candidates that
    # share a first step share its tokens, so the tree's steps are summed).
    assert usage.completion_tokens >= sum(node["tokens"] for node in tree)
    assert usage.completion_tokens >= max(c["tokens"] for c in ponder["candidates"])
    assert usage.completion_tokens_details.reasoning_tokens <= usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens <= usage.prompt_tokens


@pytest.mark.parametrize("reasoning", ["visible", "hidden"])
def test_streamed_search_reports_each_round(server: Server, reasoning: str) -> None:
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 64, "temperature": 0.8,
            "stream": True, "reasoning": reasoning,
            "strategy": {"name": "beam_search", "beam_width": 2, "expand": 2, **SEARCH}}
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json=body,
                      headers=server.headers(), timeout=120) as response:
        lines = list(response.iter_lines())
    comments = [line for line in lines if line.startswith(": Step ")]
    data = "\n".join(line for line in lines if line.startswith("data: "))
    if reasoning == "visible":
        assert "Step 1:" in data and "leading answer" in data and not comments
    else:
        assert comments and "reasoning_content" not in data and "Step 1:" not in data
    assert lines[-1] == "data: [DONE]" or lines[-2] == "data: [DONE]"


def test_a_search_larger_than_the_server_allows_is_refused(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={
        "model": "smollm2", "messages": QUESTION, "max_tokens": 8,
        "strategy": {"name": "beam_search", "beam_width": 16, "expand": 16, "max_steps": 10}})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "strategy"
    assert "--max-samples" in response.json()["error"]["message"]


async def test_a_client_that_leaves_mid_search_stops_every_expansion(
    server: Server, http: httpx.Client
) -> None:
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 1500, "temperature": 1.0,
            "strategy": {"name": "dvts", "n": 8, "expand": 2, "prm": "step-checker",
                         "step_delimiter": "@@never@@", "max_steps": 4}}
    assert await leave_once_running(server.base_url, server.headers(), http, body) == 0


PARTICLES = {"name": "particle_filtering", "n": 4, **SEARCH}


def test_particle_filtering_answers_with_ancestry_weights_and_ess(client: openai.OpenAI) -> None:
    response = _search(client, PARTICLES)
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    tree, rounds = ponder["tree"], ponder["details"]["rounds"]
    assert response.choices[0].message.content is not None and ponder["samples"] == len(tree)
    ids = {node["id"] for node in tree}
    assert all(node["parent"] is None or node["parent"] in ids for node in tree)
    assert len([node for node in tree if node["depth"] == 1]) == 4  # one step per particle
    for round_ in rounds:
        assert len(round_["weights"]) == len(round_["particles"]) == 4
        assert abs(sum(round_["weights"]) - 1) < 1e-3 and 1 <= round_["ess"] <= 4 + 1e-6
        assert len(round_["kept"]) == 4 and set(round_["kept"]) <= set(round_["particles"])
    usage = response.usage
    assert usage is not None and usage.completion_tokens >= sum(n["depth"] > 0 for n in tree)


def test_streamed_particle_filtering_reports_progress_before_the_answer(server: Server) -> None:
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 64, "temperature": 0.8,
            "stream": True, "strategy": PARTICLES}
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json=body,
                      headers=server.headers(), timeout=120) as response:
        data = [line for line in response.iter_lines() if line.startswith("data: {")]
    progress = [i for i, line in enumerate(data) if "Step 1:" in line]
    content = [i for i, line in enumerate(data) if '"content":"' in line
               and '"content":""' not in line]
    assert progress and content and progress[0] < content[0]


async def test_a_client_that_leaves_stops_the_particles(server: Server, http: httpx.Client) -> None:
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 1500, "temperature": 1.0,
            "strategy": {**PARTICLES, "n": 8, "step_delimiter": "@@never@@"}}
    assert await leave_once_running(server.base_url, server.headers(), http, body) == 0
