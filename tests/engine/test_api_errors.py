"""Bad input: a clear OpenAI-shaped error naming the field, the right status,
no traceback, and the engine still serves the next request."""

from __future__ import annotations

import httpx
import openai
import pytest

from ..probes import leave_once_running, running_requests, wait_idle
from .conftest import Server

QUESTION = [{"role": "user", "content": "Say hi."}]
VALID = {"model": "smollm2", "messages": QUESTION, "max_tokens": 4}

BAD_BODIES = [
    pytest.param({**VALID, "messages": []}, 400, "messages", id="empty-messages"),
    pytest.param({**VALID, "messages": "hi"}, 400, "messages", id="messages-not-a-list"),
    pytest.param({**VALID, "messages": [{"role": "wizard", "content": "x"}]}, 400,
                 "messages.0.role", id="bad-role"),
    pytest.param({**VALID, "temperature": "hot"}, 400, "temperature", id="wrong-type"),
    pytest.param({**VALID, "strategy": {"name": "cot", "beams": 3}}, 400, "strategy.beams",
                 id="unknown-strategy-field"),
    pytest.param({**VALID, "strategy": "telepathy"}, 400, "strategy", id="unknown-strategy"),
    pytest.param({**VALID, "model": "gpt-9"}, 404, "model", id="unknown-model"),
    pytest.param({**VALID, "model": "smollm2@telepathy"}, 404, "model", id="unknown-alias"),
    pytest.param({**VALID, "max_tokens": 0}, 400, "max_tokens", id="max-tokens-zero"),
    pytest.param({**VALID, "max_tokens": 1_000_000}, 400, "max_tokens", id="max-tokens-too-big"),
    pytest.param({**VALID, "max_completion_tokens": 0}, 400, "max_completion_tokens",
                 id="max-completion-tokens-zero"),
    pytest.param({**VALID, "n": 1000}, 400, "n", id="n-over-cap"),
    pytest.param({**VALID, "messages": [{"role": "user", "content": "word " * 20000}]}, 400,
                 "messages", id="prompt-too-long"),
    pytest.param({**VALID, "stream": True,
                  "messages": [{"role": "user", "content": "word " * 20000}]}, 400,
                 "messages", id="prompt-too-long-streaming"),
    pytest.param({**VALID, "stop": ["a", "b", "c", "d", "e"]}, 400, "stop", id="too-many-stops"),
    pytest.param({**VALID, "messages": [{"role": "tool"}]}, 400, "messages.0",
                 id="message-without-content"),
    pytest.param({**VALID, "seed": 2**64}, 400, "seed", id="seed-beyond-int64"),
    pytest.param({**VALID, "stream_options": {"include_usage": True}}, 400, None,
                 id="stream-options-without-stream"),
]


def _assert_openai_error(response: httpx.Response, status: int, param: str | None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in response.text and "/site-packages/" not in response.text
    if param is not None:
        assert error["param"] == param


@pytest.mark.parametrize(("body", "status", "param"), BAD_BODIES)
def test_bad_request_then_a_good_one(
    http: httpx.Client, body: dict, status: int, param: str | None
) -> None:
    _assert_openai_error(http.post("/v1/chat/completions", json=body), status, param)
    good = http.post("/v1/chat/completions", json=VALID)
    assert good.status_code == 200, good.text


def test_malformed_json(http: httpx.Client) -> None:
    response = http.post(
        "/v1/chat/completions", content=b'{"model": ', headers={"content-type": "application/json"}
    )
    _assert_openai_error(response, 400, None)


def test_a_body_over_the_limit_is_refused_unread(http: httpx.Client) -> None:
    padding = "x" * (5 * 1024 * 1024)  # the default limit is 4 MiB
    response = http.post("/v1/chat/completions", json={**VALID, "user": padding})
    _assert_openai_error(response, 413, None)
    assert http.post("/v1/chat/completions", json=VALID).status_code == 200


def test_openai_client_raises_typed_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=QUESTION)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="smollm2", messages=QUESTION,  # type: ignore[arg-type]
            extra_body={"strategy": {"name": "cot", "prompt": "shout"}},
        )
    assert caught.value.body["param"] == "strategy.prompt"  # type: ignore[index]


def test_api_key_is_required_on_v1_but_not_on_health(server: Server) -> None:
    url = f"{server.base_url}/v1/models"
    _assert_openai_error(httpx.get(url), 401, None)
    _assert_openai_error(httpx.get(url, headers={"Authorization": "Bearer wrong"}), 401, None)
    assert httpx.get(url, headers=server.headers()).status_code == 200
    assert httpx.get(f"{server.base_url}/health").status_code == 200
    unauthorised = openai.OpenAI(base_url=f"{server.base_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        unauthorised.models.list()


def test_a_streaming_client_that_leaves_stops_its_generation(
    server: Server, http: httpx.Client
) -> None:
    body = {**VALID, "max_tokens": 2000, "stream": True, "temperature": 1.0, "ignore_eos": True,
            "strategy": "none", "n": 2}
    with httpx.stream("POST", f"{server.base_url}/v1/chat/completions", json=body,
                      headers=server.headers(), timeout=60) as response:
        for count, _ in enumerate(response.iter_lines()):
            if count == 6:
                assert running_requests(http) >= 1
                break
    assert wait_idle(http) == 0


async def test_a_non_streaming_client_that_leaves_stops_its_generation(
    server: Server, http: httpx.Client
) -> None:
    body = {**VALID, "max_tokens": 2000, "temperature": 1.0, "ignore_eos": True}
    assert await leave_once_running(server.base_url, server.headers(), http, body) == 0
