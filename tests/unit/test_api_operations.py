"""What an operator relies on, through the real app and HTTP stack over ASGI
with a scripted generator (so failures can be injected and requests held):
PRM failures as 502/503/504, --request-timeout, draining and aborting,
request ids, one log record per unexpected failure, and the optional key on
/metrics and /docs, a stream's prompt refused before its 200. The real process's signals and engine death are in
test_lifecycle.py."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from ponder.core.generation import Generation, Prompt, RequestRejected, SampleDelta, Sampling
from ponder.prm.remote import RemotePRM
from ponder.server.streaming import FIRST_EVENT_GRACE_S
from ponder.strategies.base import Verifiers

from ..asgi import asgi_app, asgi_client
from ..fakes import ScriptedGenerator

CHAT = "/v1/chat/completions"
BODY = {"model": "smollm2", "messages": [{"role": "user", "content": "What is 2 + 2?"}],
        "max_tokens": 64}
BEST_OF_2 = {**BODY, "temperature": 0.7, "strategy": {"name": "best_of_n", "n": 2}}


def _error(response: httpx.Response, status: int, code: str | None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    assert "Traceback" not in response.text
    return error


def _remote_prm(respond: httpx.MockTransport) -> Verifiers:
    return Verifiers.of(default="qwen", qwen=RemotePRM(httpx.AsyncClient(
        transport=respond, base_url="http://prm.test")))


def _raising(error: Exception) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error
    return httpx.MockTransport(handler)


@pytest.mark.parametrize(("transport", "status", "code"), [
    (httpx.MockTransport(lambda _: httpx.Response(500, json={"error": "boom"})),
     502, "upstream_failed"),
    (httpx.MockTransport(lambda _: httpx.Response(200, json={"object": "list"})),
     502, "upstream_failed"),
    (httpx.MockTransport(lambda _: httpx.Response(503)), 503, "engine_unavailable"),
    (_raising(httpx.ConnectError("refused")), 503, "engine_unavailable"),
    (_raising(httpx.ReadTimeout("slow")), 504, "upstream_timeout"),
], ids=["http-500", "foreign-answer", "http-503", "refused", "timeout"])
async def test_a_failing_remote_prm_is_a_gateway_error(
    transport: httpx.MockTransport, status: int, code: str
) -> None:
    app = asgi_app(ScriptedGenerator.of("2 + 2 = 4. Answer: 4"), _remote_prm(transport))
    async with asgi_client(app) as client:
        response = await client.post(CHAT, json=BEST_OF_2)
        error = _error(response, status, code)
        assert error["param"] == "strategy.prm" and "remote PRM" in error["message"]
        if status == 503:
            assert response.headers["retry-after"]
        assert (await client.post(CHAT, json=BODY)).status_code == 200


class SlowGenerator(ScriptedGenerator):
    """Streams one token every ``delay`` seconds; ``silent`` makes it wait
    forever before the first."""

    def __init__(self, delay: float, silent: bool = False) -> None:
        super().__init__(lambda _p, n, _s: ["one two three four five six seven eight"] * n)
        self.delay = delay
        self.silent = silent

    async def stream(self, prompt: Prompt, n: int, sampling: Sampling) -> AsyncIterator[SampleDelta]:
        if self.silent:
            await asyncio.Event().wait()
        async for delta in super().stream(prompt, n, sampling):
            await asyncio.sleep(self.delay)
            yield delta

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        raise AssertionError("under a deadline every call is streamed, so it can be cut")


async def test_past_the_request_timeout_the_best_answer_so_far_is_the_answer() -> None:
    app = asgi_app(SlowGenerator(delay=0.1), request_timeout=0.35)
    async with asgi_client(app) as client:
        response = await client.post(CHAT, json=BODY)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["choices"][0]["message"]["content"].startswith("one")
    assert body["ponder"]["budget_exhausted"] is True
    assert 0 < body["usage"]["completion_tokens"] < 8


async def test_past_the_request_timeout_with_no_answer_yet_is_a_504() -> None:
    app = asgi_app(SlowGenerator(delay=0, silent=True), request_timeout=0.3)
    async with asgi_client(app) as client:
        _error(await client.post(CHAT, json=BODY), 504, "request_timeout")
        streamed = await client.post(CHAT, json={**BODY, "stream": True})
        metrics = (await client.get("/metrics")).text
    frames = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert frames[-1] == "[DONE]"
    assert json.loads(frames[-2])["error"]["code"] == "request_timeout"
    assert 'ponder_requests_total{status="504",strategy="none",stream="false"} 1.0' in metrics
    assert 'ponder_budget_exhaustions_total{strategy="none"} 2.0' in metrics


class HeldGenerator(ScriptedGenerator):
    def __init__(self) -> None:
        super().__init__(lambda _p, n, _s: ["four"] * n)
        self.started = 0

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        self.started += 1
        await asyncio.Event().wait()
        raise AssertionError("never released")

    async def stream(self, prompt: Prompt, n: int, sampling: Sampling) -> AsyncIterator[SampleDelta]:
        self.started += 1
        await asyncio.Event().wait()
        yield  # type: ignore[misc]


async def test_a_draining_server_refuses_new_work_and_aborts_the_rest_cleanly() -> None:
    generator = HeldGenerator()
    app = asgi_app(generator)
    async with asgi_client(app) as client:
        whole = asyncio.create_task(client.post(CHAT, json=BODY))
        streamed = asyncio.create_task(client.post(CHAT, json={**BODY, "stream": True}))
        while generator.started < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(FIRST_EVENT_GRACE_S + 0.1)  # the stream has sent its 200

        app.state.lifecycle.drain()
        refused = await client.post(CHAT, json=BODY)
        _error(refused, 503, "server_shutting_down")
        assert refused.headers["retry-after"]
        health = await client.get("/health")
        assert health.status_code == 503 and health.json() == {"status": "draining"}
        assert not whole.done() and not streamed.done()

        app.state.lifecycle.abort()
        _error(await whole, 503, "server_shutting_down")
        frames = [line[6:] for line in (await streamed).text.splitlines()
                  if line.startswith("data: ")]
        assert frames[-1] == "[DONE]"
        assert json.loads(frames[-2])["error"]["code"] == "server_shutting_down"
        assert app.state.service.in_flight == 0


class BrokenGenerator(ScriptedGenerator):
    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        raise TypeError("a bug")


async def test_an_unexpected_failure_is_a_500_logged_once_with_its_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    async with asgi_client(asgi_app(BrokenGenerator.of("x"))) as client:
        response = await client.post(CHAT, json=BODY, headers={"X-Request-Id": "trace-42"})
    _error(response, 500, None)
    assert response.headers["x-request-id"] == "trace-42"
    logged = [r for r in caplog.records if r.exc_info]
    assert len(logged) == 1 and "a bug" in str(logged[0].exc_info[1])


async def test_every_response_carries_a_request_id() -> None:
    async with asgi_client(asgi_app(ScriptedGenerator.of("four"), api_key="k")) as client:
        mine = await client.get("/health", headers={"X-Request-Id": "abc-123"})
        refused = await client.post(CHAT, json=BODY)  # no key: 401
        forged = await client.get("/health", headers={"X-Request-Id": "bad id\r\nx: y"})
    assert mine.headers["x-request-id"] == "abc-123"
    assert refused.status_code == 401 and len(refused.headers["x-request-id"]) == 32
    assert forged.headers["x-request-id"] != "bad id\r\nx: y"  # replaced by one of ours


@pytest.mark.parametrize("secure", [False, True])
async def test_metrics_and_docs_are_open_unless_put_behind_the_key(secure: bool) -> None:
    app = asgi_app(ScriptedGenerator.of("four"), api_key="k", secure_docs_and_metrics=secure)
    async with asgi_client(app) as client:
        for path in ("/metrics", "/docs", "/redoc", "/openapi.json"):
            anonymous = await client.get(path)
            assert anonymous.status_code == (401 if secure else 200), path
            keyed = await client.get(path, headers={"Authorization": "Bearer k"})
            assert keyed.status_code == 200, path
        assert (await client.get("/health")).status_code != 401  # always open
        schema = (await client.get("/openapi.json", headers={"Authorization": "Bearer k"})).json()
    assert "/v1/chat/completions" in schema["paths"]


class SlowToRenderGenerator(ScriptedGenerator):
    """Renders as a loaded machine renders a long prompt: past the stream's
    grace for its first event, then refuses it as too long."""

    async def render(self, prompt: Prompt) -> Prompt:
        await asyncio.sleep(FIRST_EVENT_GRACE_S * 2)
        raise RequestRejected("The prompt is 9000 tokens long.", param="messages")


class LongPromptGenerator(ScriptedGenerator):
    async def render(self, prompt: Prompt) -> Prompt:
        return replace(prompt, token_ids=(1,) * 2000)  # of the app's 2048-token context


@pytest.mark.parametrize("strategy", [None, {"name": "self_consistency", "n": 2}])
async def test_a_stream_refuses_a_prompt_too_long_before_its_200_however_slow_the_render(
    strategy: dict | None,
) -> None:
    body = {**BODY, "stream": True, **({"strategy": strategy} if strategy else {})}
    async with asgi_client(asgi_app(SlowToRenderGenerator.of("4"))) as client:
        error = _error(await client.post(CHAT, json=body), 400, None)
    assert error["param"] == "messages"


async def test_a_stream_refuses_a_token_cap_the_prompt_leaves_no_room_for() -> None:
    async with asgi_client(asgi_app(LongPromptGenerator.of("4"))) as client:
        error = _error(await client.post(CHAT, json={**BODY, "stream": True,
                                                     "max_completion_tokens": 64}), 400, None)
    assert error["param"] == "max_completion_tokens"
    assert "leaving 48" in error["message"]
