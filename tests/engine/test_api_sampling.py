"""Sampling fields through the real server: OpenAI's penalties and logit
bias, vLLM's extensions, `n` as one engine request, and message content as
a list of parts."""

from __future__ import annotations

import httpx
import openai
import pytest

from ..probes import engine_requests
from .conftest import Server

SAY_OK = [{"role": "user", "content": "Say OK."}]


def _text(client: openai.OpenAI, **fields: object) -> str:
    """Greedy unless ``fields`` say otherwise."""
    response = client.chat.completions.create(
        model="smollm2", messages=SAY_OK, max_tokens=20, **{"temperature": 0, **fields}  # type: ignore[arg-type]
    )
    return response.choices[0].message.content or ""


@pytest.mark.parametrize("penalty", ["frequency_penalty", "presence_penalty", "repetition_penalty"])
def test_penalties_break_a_repetition(client: openai.OpenAI, penalty: str) -> None:
    prompt = "ha ha ha ha ha ha ha ha ha ha"
    plain = client.completions.create(model="smollm2", prompt=prompt, max_tokens=24, temperature=0)
    penalised = client.completions.create(
        model="smollm2", prompt=prompt, max_tokens=24, temperature=0, extra_body={penalty: 1.5})
    repeats = [c.choices[0].text.split().count("ha") for c in (plain, penalised)]
    assert repeats[0] >= 5 and repeats[1] < repeats[0] / 2, repeats


def test_logit_bias_bans_a_token(client: openai.OpenAI, http: httpx.Client) -> None:
    prompt = "The capital of France is"
    [paris] = http.post("/tokenize", json={"prompt": " Paris", "add_special_tokens": False}
                        ).json()["tokens"]
    plain = client.completions.create(model="smollm2", prompt=prompt, max_tokens=3, temperature=0)
    banned = client.completions.create(model="smollm2", prompt=prompt, max_tokens=3,
                                       temperature=0, logit_bias={str(paris): -100})
    assert plain.choices[0].text.startswith(" Paris")
    assert "Paris" not in banned.choices[0].text


def test_vllm_extensions(client: openai.OpenAI, http: httpx.Client) -> None:
    natural = client.chat.completions.create(
        model="smollm2", messages=SAY_OK, max_tokens=20, temperature=0)
    assert natural.usage is not None and natural.usage.completion_tokens < 18
    assert natural.choices[0].finish_reason == "stop"
    longer = client.chat.completions.create(
        model="smollm2", messages=SAY_OK, max_tokens=20, temperature=0,
        extra_body={"min_tokens": 18})
    assert longer.usage is not None and longer.usage.completion_tokens >= 18
    past_eos = client.chat.completions.create(
        model="smollm2", messages=SAY_OK, max_tokens=20, temperature=0,
        extra_body={"ignore_eos": True})
    assert past_eos.usage is not None and past_eos.usage.completion_tokens == 20
    assert past_eos.choices[0].finish_reason == "length"
    # Past its end the model writes the next turn's markers, special tokens
    # that are left out of the text unless asked for.
    text = past_eos.choices[0].message.content or ""
    assert "<|im_start|>" not in text
    raw = _text(client, extra_body={"ignore_eos": True, "skip_special_tokens": False})
    assert "<|im_end|>" in raw and raw.startswith(natural.choices[0].message.content or "")
    [question_mark] = http.post("/tokenize", json={"prompt": "?", "add_special_tokens": False}
                                ).json()["tokens"]
    stopped = client.chat.completions.create(
        model="smollm2", messages=SAY_OK, max_tokens=20, temperature=0,
        extra_body={"stop_token_ids": [question_mark]})
    assert stopped.choices[0].finish_reason == "stop"
    assert "?" not in (stopped.choices[0].message.content or "")
    assert _text(client, stop=["."]).endswith(".") is False
    assert _text(client, stop=["."], extra_body={"include_stop_str_in_output": True}
                        ).endswith(".")
    # Sampling restricted to the likeliest token is greedy sampling.
    sampled = _text(client, temperature=1.0, seed=5, extra_body={"top_k": 1})
    assert sampled == natural.choices[0].message.content
    assert _text(client, temperature=1.0, seed=5, extra_body={"min_p": 1.0}) == sampled


@pytest.mark.parametrize("strategy", ["none", "cot"])
def test_n_choices_are_one_engine_request(
    client: openai.OpenAI, http: httpx.Client, strategy: str
) -> None:
    before = engine_requests(http)
    response = client.chat.completions.create(
        model="smollm2", messages=SAY_OK, max_tokens=8, temperature=1.0, seed=3, n=4,
        extra_body={"strategy": strategy},
    )
    requests, children = (a - b for a, b in zip(engine_requests(http), before))
    assert (requests, children) == (1, 4)
    assert [c.index for c in response.choices] == [0, 1, 2, 3]
    assert len({c.message.content for c in response.choices}) > 1
    usage = response.usage
    assert usage is not None and usage.completion_tokens <= 4 * 8
    # The engine read the prompt once for all four.
    single = client.chat.completions.create(model="smollm2", messages=SAY_OK, max_tokens=1,
                                            extra_body={"strategy": strategy})
    assert single.usage is not None and usage.prompt_tokens == single.usage.prompt_tokens


def test_n_completions_of_each_prompt_are_one_engine_request(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    before = engine_requests(http)
    response = client.completions.create(
        model="smollm2", prompt=["Once upon a time", "The sky is"], max_tokens=6,
        temperature=1.0, seed=3, n=3,
    )
    requests, children = (a - b for a, b in zip(engine_requests(http), before))
    assert (requests, children) == (2, 6)
    assert [c.index for c in response.choices] == list(range(6))


def test_text_parts_are_one_message(client: openai.OpenAI) -> None:
    """vLLM's serving benchmark sends content as a list of text parts."""
    parts = [{"type": "text", "text": "Say"}, {"type": "text", "text": "OK."}]
    for strategy in ("none", "cot"):
        as_parts = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": parts}],  # type: ignore[list-item]
            max_tokens=8, temperature=0, extra_body={"strategy": strategy},
        )
        as_text = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Say\nOK."}],
            max_tokens=8, temperature=0, extra_body={"strategy": strategy},
        )
        assert as_parts.choices[0].message.content == as_text.choices[0].message.content
        assert as_parts.usage is not None and as_text.usage is not None
        # The second prompt may be served from the first one's cached blocks.
        assert (as_parts.usage.prompt_tokens, as_parts.usage.completion_tokens) == \
            (as_text.usage.prompt_tokens, as_text.usage.completion_tokens)


def test_media_parts_are_refused_by_name_and_the_connection_lives_on(server: Server) -> None:
    media = [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
        {"type": "file", "file": {"file_id": "file-1"}},
    ]
    with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=60) as session:
        for part in media:
            body = {"model": "smollm2", "max_tokens": 2, "messages": [
                {"role": "user", "content": [{"type": "text", "text": "What is this?"}, part]}]}
            response = session.post("/v1/chat/completions", json=body)
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["param"] == "messages.0.content"
            assert f"part 1 (type {part['type']})" in error["message"]
            assert "text only" in error["message"]
        # A malformed part is a 400 too (an unhashable type once made a 500).
        for part, problem in (({"type": []}, "does not match"), ({"type": "text"}, "text: Field")):
            body = {"model": "smollm2", "max_tokens": 2,
                    "messages": [{"role": "tool", "content": [part]}]}
            response = session.post("/v1/chat/completions", json=body)
            assert response.status_code == 400, response.text
            assert response.json()["error"]["param"] == "messages.0.content"
            message = response.json()["error"]["message"]
            assert "part 0: " in message and problem in message
        # The same keep-alive connection serves the next request.
        good = session.post("/v1/chat/completions", json={
            "model": "smollm2", "max_tokens": 2, "messages": SAY_OK})
        assert good.status_code == 200
        assert response.headers.get("connection", "keep-alive") != "close"


@pytest.mark.parametrize(("field", "value", "accepted"), [
    ("store", True, False), ("store", False, True),
    ("audio", {"voice": "alloy", "format": "wav"}, False),
    ("modalities", ["text", "audio"], False), ("modalities", ["text"], True),
    ("prediction", {"type": "content", "content": "x"}, False),
    ("metadata", {"k": "v"}, False),
    ("service_tier", "flex", False), ("service_tier", "auto", True),
    ("web_search_options", {}, False),
    ("functions", [{"name": "f"}], False), ("function_call", "auto", False),
    ("verbosity", "low", False),
    ("prompt_cache_key", "user-7", True), ("safety_identifier", "user-7", True),
    ("stream_options", {"include_obfuscation": True}, False),
])
def test_openai_fields_ponder_cannot_honour_are_named(
    http: httpx.Client, field: str, value: object, accepted: bool
) -> None:
    body = {"model": "smollm2", "messages": SAY_OK, "max_tokens": 2, field: value}
    if field == "stream_options":
        body["stream"] = True
    response = http.post("/v1/chat/completions", json=body)
    if accepted:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] is not None and error["param"].startswith(field)
    assert "ponder does not support" in error["message"]
