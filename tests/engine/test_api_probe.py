"""The hidden-state probe and genselect through the real server and engine.

The probe reads the served model's hidden states from a second pooling
engine over the same weights, started in the session's server by the first
request that asks for it. A scripted right and a wrong solution come from
the model itself: a JSON schema whose one value is the text."""

from __future__ import annotations

import re
from typing import Any

import httpx
import openai

from ponder.core.steps import StepSpec

from ..probes import engine_requests, leave_once_running
from .conftest import Server

QUESTION = [{"role": "user", "content": "Tom has 3 bags with 4 apples each. How many apples?"}]
RIGHT = "3 bags of 4 apples: 3 * 4 = 12. The answer is 12."
WRONG = "3 bags of 4 apples: 3 * 4 = 15. The answer is 15."


def _probe_calls(http: httpx.Client) -> float:
    text = http.get("/metrics").text
    found = re.search(r'ponder_prm_seconds_count\{prm="probe",strategy="best_of_n"\} (\S+)',
                      text) or re.search(
        r'ponder_prm_seconds_count\{strategy="best_of_n",prm="probe"\} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def _best_of(client: openai.OpenAI, n: int = 6, **extra: Any) -> dict[str, Any]:
    response = client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=40, temperature=1.0,  # type: ignore[arg-type]
        seed=5, extra_body={"strategy": {"name": "best_of_n", "n": n, "prm": "probe"},
                            "include_candidates": True}, **extra)
    return response.model_extra["ponder"]  # type: ignore[index]


def test_the_probe_scores_every_step_in_one_pooling_call(client: openai.OpenAI,
                                                         http: httpx.Client) -> None:
    before = _probe_calls(http)
    ponder = _best_of(client)
    assert _probe_calls(http) == before + 1  # one scoring call for the whole batch
    for candidate in ponder["candidates"]:
        steps = StepSpec().split(candidate["text"])
        assert len(candidate["step_scores"]) == len(steps)
        assert all(0.0 < score < 1.0 for score in candidate["step_scores"])


def test_the_probe_tells_a_scripted_right_solution_from_a_wrong_one(
    client: openai.OpenAI,
) -> None:
    scores = {}
    for text in (RIGHT, WRONG):
        schema = {"type": "json_schema", "json_schema": {
            "name": "solution", "schema": {"type": "string", "enum": [text]}}}
        ponder = _best_of(client, n=2, response_format=schema)
        assert {c["text"] for c in ponder["candidates"]} == {f'"{text}"'}
        assert len({c["score"] for c in ponder["candidates"]}) == 1  # same text, same score
        scores[text] = ponder["candidates"][0]["score"]
    assert scores[RIGHT] != scores[WRONG]


def test_genselect_answers_through_the_openai_client_with_its_rounds_streamed(
    client: openai.OpenAI,
) -> None:
    chunks = list(client.chat.completions.create(
        model="smollm2", messages=QUESTION, max_tokens=32, temperature=0.8, seed=3,  # type: ignore[arg-type]
        stream=True, stream_options={"include_usage": True},
        extra_body={"strategy": {"name": "genselect", "n": 4, "group": 2, "judge_tokens": 24}},
    ))
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or ""
                        for c in chunks if c.choices)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = next(c.usage for c in chunks if c.usage is not None)
    assert content
    assert reasoning.lower().count("round") >= 2  # a knock-out of 4 in pairs plays two
    assert usage.completion_tokens > 0


async def test_a_client_that_leaves_stops_generation_and_no_probe_runs_for_it(
    server: Server, client: openai.OpenAI, http: httpx.Client
) -> None:
    """The probe scores whole candidates once they end; a client gone before
    then leaves nothing running in the policy engine and asks the pooling
    engine for nothing."""
    _best_of(client, n=2)
    before = _probe_calls(http)  # the pooling engine is up: a call would show
    body = {"model": "smollm2", "messages": QUESTION, "max_tokens": 1500, "min_tokens": 1500,
            "temperature": 1.0, "strategy": {"name": "best_of_n", "n": 4, "prm": "probe"}}
    assert await leave_once_running(server.base_url, server.headers(), http, body) == 0
    assert _probe_calls(http) == before


def test_the_policy_engines_metrics_stay_once_the_pooling_engine_runs(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    """vLLM takes every engine's metrics out of the registry when another
    engine starts logging its own; the pooling engine logs none."""
    _best_of(client, n=2)
    before = engine_requests(http)
    client.chat.completions.create(model="smollm2", messages=QUESTION, max_tokens=2)  # type: ignore[arg-type]
    assert engine_requests(http) == (before[0] + 1, before[1] + 1)
