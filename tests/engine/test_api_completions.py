"""POST /v1/completions on the real server, with the official `openai`
client and with httpx: raw text in, no chat template, strategies included."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from .conftest import Server

PROMPT = "Question: What is 7 + 5?\nAnswer:"


def test_completion_continues_the_raw_prompt(client: openai.OpenAI) -> None:
    response = client.completions.create(model="smollm2", prompt=PROMPT, max_tokens=12,
                                         temperature=0)
    assert response.object == "text_completion" and response.id.startswith("cmpl-")
    choice = response.choices[0]
    assert choice.text and choice.finish_reason in ("stop", "length")
    usage = response.usage
    assert usage is not None and 0 < usage.completion_tokens <= 12
    # No chat template: the prompt is this text's tokens plus BOS at most.
    assert usage.prompt_tokens < 20
    assert response.model_extra["ponder"]["strategy"] == {  # type: ignore[index]
        "name": "none", "early_exit": None}


def test_default_max_tokens_is_openais_16(client: openai.OpenAI) -> None:
    response = client.completions.create(model="smollm2", prompt="Once upon a time",
                                         temperature=0)
    assert response.usage is not None and response.usage.completion_tokens <= 16


def test_each_prompt_gets_n_choices_in_order(client: openai.OpenAI) -> None:
    prompts = ["The capital of France is", "2 + 2 ="]
    response = client.completions.create(model="smollm2", prompt=prompts, n=2, max_tokens=6,
                                         temperature=0)
    assert [c.index for c in response.choices] == [0, 1, 2, 3]
    singles = [client.completions.create(model="smollm2", prompt=p, max_tokens=6, temperature=0)
               for p in prompts]
    expected = [singles[0].choices[0].text] * 2 + [singles[1].choices[0].text] * 2
    assert [c.text for c in response.choices] == expected


def test_stream_matches_the_whole_completion(client: openai.OpenAI) -> None:
    args = dict(model="smollm2", prompt=PROMPT, max_tokens=16, temperature=0)
    whole = client.completions.create(**args)  # type: ignore[call-overload]
    chunks = list(client.completions.create(
        **args, stream=True, stream_options={"include_usage": True}))  # type: ignore[call-overload]
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [whole.choices[0].finish_reason]
    assert chunks[-1].usage == whole.usage and not chunks[-1].choices


def test_self_consistency_over_a_raw_prompt(client: openai.OpenAI) -> None:
    response = client.completions.create(
        model="smollm2", prompt=PROMPT, max_tokens=12, temperature=0.8, seed=3,
        extra_body={"strategy": {"name": "self_consistency", "n": 4, "prompt": "direct"},
                    "include_candidates": True},
    )
    ponder = response.model_extra["ponder"]  # type: ignore[index]
    assert ponder["samples"] == 4 and len(ponder["candidates"]) == 4
    assert sum(ponder["votes"].values()) <= 4
    if ponder["answer"] is not None:
        assert response.choices[0].text == ponder["answer"]
    assert response.usage is not None
    assert response.usage.completion_tokens == sum(c["tokens"] for c in ponder["candidates"])


def test_hidden_cot_keeps_the_trace_out_of_the_stream(server: Server) -> None:
    body = {"model": "smollm2", "prompt": PROMPT, "max_tokens": 48, "temperature": 0,
            "stream": True, "strategy": "cot", "reasoning": "hidden"}
    with httpx.stream("POST", f"{server.base_url}/v1/completions", json=body,
                      headers=server.headers(), timeout=60) as response:
        assert response.status_code == 200
        frames = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(frame) for frame in frames[:-1]]
    assert all("reasoning_content" not in c for chunk in chunks for c in chunk["choices"])


@pytest.mark.parametrize(("body", "param"), [
    pytest.param({"model": "smollm2"}, "prompt", id="no-prompt"),
    pytest.param({"model": "smollm2", "prompt": []}, "prompt", id="empty-prompt-list"),
    pytest.param({"model": "smollm2", "prompt": [[1, 2, 3]]}, "prompt", id="token-ids"),
    pytest.param({"model": "smollm2", "prompt": "hi", "echo": True}, "echo", id="unsupported"),
    pytest.param({"model": "smollm2", "prompt": "word " * 20000}, "prompt", id="too-long"),
    pytest.param({"model": "smollm2", "prompt": ["a"] * 5, "n": 2}, "n", id="too-many-choices"),
])
def test_bad_completion_requests_name_the_field(http: httpx.Client, body: dict,
                                                param: str) -> None:
    response = http.post("/v1/completions", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert http.post("/v1/completions", json={"model": "smollm2", "prompt": "hi",
                                              "max_tokens": 2}).status_code == 200
