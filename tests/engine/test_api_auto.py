"""``auto`` through the real server: the shipped policy answers with its
decision in ``ponder.strategy``, and a server with a scripted policy stops
after the probe on an easy question and escalates on a hard one. The script:
difficulty reads only the samples' length, and ``min_tokens`` = ``max_tokens``
fixes the length, so the decision does not depend on what the model writes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from ponder.bench.servers import free_port, launched
from ponder.server.config import SHIPPED_POLICY

from ..probes import leave_once_running
from .conftest import API_KEY, STARTUP_TIMEOUT_S, Server

QUESTION = [{"role": "user", "content": "Tom has 3 bags with 4 apples each and eats 2. "
             "How many apples are left?"}]
SCRIPTED = {
    "source": "test: long answers are hard",
    "probe": {"samples": 2, "answer_below": 0.5},
    # 8-token samples: difficulty 0.02 (easy); 64-token samples: 0.99 (hard).
    "difficulty": {"bias": 5.0, "length": -40.0},
    "bins": [{"upper": 1.0, "choices": {"4": "best_of_n@4", "8": "particle_filtering@8"}}],
}


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    path = tmp_path_factory.mktemp("policy") / "policy.json"
    shipped = json.loads(SHIPPED_POLICY.read_text())
    path.write_text(json.dumps({**SCRIPTED, "model": shipped["model"],
                                "verifiers": shipped["verifiers"]}))
    port = free_port()
    command = [sys.executable, "-m", "ponder.server.cli", "serve", "--port", str(port),
               "--api-key", API_KEY, "--policy", str(path), "--kv-cache-gb", "1"]
    with launched("ponder-scripted-policy", command, port, "smollm2",
                  timeout=STARTUP_TIMEOUT_S) as running:
        yield openai.OpenAI(base_url=f"{running.base_url}/v1", api_key=API_KEY, max_retries=0)


def _auto(client: openai.OpenAI, tokens: int, n: int, **extra: object
          ) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=tokens, temperature=0.8, seed=5,  # type: ignore[arg-type]
        extra_body={"strategy": {"name": "auto", "n": n}, "min_tokens": tokens,
                    "include_candidates": True, **extra})


def test_the_shipped_policy_is_the_served_models(server: Server) -> None:
    """The fingerprint the engine computes for the embedded model is the one
    the shipped policy names: the policy applies."""
    listing = httpx.get(f"{server.base_url}/v1/strategies",
                        headers={"Authorization": f"Bearer {API_KEY}"}).json()
    shown = next(card for card in listing["data"] if card["name"] == "auto")["policy"]
    assert shown["applies"] and shown["fit_on"]["fingerprint"] == listing["model"]["fingerprint"]


def test_the_shipped_policy_answers_and_says_why(client: openai.OpenAI) -> None:
    response = _auto(client, 48, 8)
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    decision = ponder["strategy"]["decision"]
    assert response.choices[0].message.content
    assert {"signals", "difficulty", "bin", "choice", "why", "policy"} <= set(decision)
    assert 0 <= decision["difficulty"] <= 1
    assert all(set(c["verifiers"]) >= {"vote-share", "step-checker"}
               for c in ponder["candidates"] if "verifiers" in c)


def test_an_easy_question_stops_after_the_probe(scripted: openai.OpenAI) -> None:
    response = _auto(scripted, 8, 8)
    decision = response.model_extra["ponder"]["strategy"]["decision"]  # type: ignore[index]
    assert decision["choice"] == "probe@2" and decision["difficulty"] < 0.5
    assert response.usage is not None and response.usage.completion_tokens == 2 * 8


def test_a_hard_question_escalates_reusing_the_probe(scripted: openai.OpenAI) -> None:
    response = _auto(scripted, 64, 4)
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    decision = ponder["strategy"]["decision"]
    assert decision["choice"] == "best_of_n@4" and decision["difficulty"] > 0.5
    assert decision["probe_samples_reused"] == 2 and len(ponder["candidates"]) == 4
    assert response.usage is not None and response.usage.completion_tokens == 4 * 64


def test_a_hard_question_streams_its_decision_before_the_answer(scripted: openai.OpenAI) -> None:
    stream = scripted.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=64, temperature=0.8, seed=5,  # type: ignore[arg-type]
        stream=True, extra_body={"strategy": {"name": "auto", "n": 4}, "min_tokens": 64,
                                 "reasoning": "visible"})
    reasoning, content = "", ""
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if content == "":
            reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
        content += delta.content or ""
    assert "Difficulty" in reasoning and "best_of_n@4" in reasoning and content


def test_the_budget_holds_across_probe_and_escalation(scripted: openai.OpenAI) -> None:
    response = _auto(scripted, 64, 8, budget={"max_tokens": 200})
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    assert response.usage is not None and response.usage.completion_tokens <= 200 + 64
    assert ponder["budget_exhausted"] is True


async def test_a_client_that_leaves_stops_auto(server: Server, http: httpx.Client) -> None:
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 1500, "min_tokens": 1500,
            "temperature": 1.0, "strategy": {"name": "auto", "n": 16}}
    assert await leave_once_running(server.base_url, server.headers(), http, body) == 0
