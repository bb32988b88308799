"""The remote generator against a scripted upstream that speaks vLLM's
completions API: each body ponder sends is validated by vLLM's own request
model (and turned into its sampling parameters), so a drift in the shape
fails here. The real fleet is tests/engine/test_fleet.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from vllm.entrypoints.openai.completion.protocol import CompletionRequest

from ponder.core.generation import JsonOutput, Prompt, RequestRejected, SampleCollector, Sampling
from ponder.server import request_context
from ponder.server.config import Settings
from ponder.server.errors import EngineUnavailable, UpstreamFailed, UpstreamTimeout
from ponder.server.remote import RemoteGenerator, api_root

PROMPT = Prompt(token_ids=(1, 2, 3), continuation=(7, 8))
Handler = Callable[[dict[str, Any]], httpx.Response]


def choice(index: int, text: str, ids: list[int], finish: str | None = "stop",
           stop: int | str | None = None, logprobs: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"index": index, "text": text, "token_ids": ids, "finish_reason": finish,
            "stop_reason": stop, "logprobs": logprobs}


def completion(*choices: dict[str, Any], cached: int = 0) -> httpx.Response:
    usage = {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5,
             "prompt_tokens_details": {"cached_tokens": cached}}
    return httpx.Response(200, json={"id": "cmpl-1", "object": "text_completion", "created": 0,
                                     "model": "m", "choices": list(choices), "usage": usage})


def sse(*chunks: dict[str, Any], done: bool = True) -> httpx.Response:
    lines = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
    if done:
        lines.append("data: [DONE]\n\n")

    async def body() -> AsyncIterator[bytes]:
        for line in lines:
            yield line.encode()

    return httpx.Response(200, content=body(), headers={"content-type": "text/event-stream"})


class Upstream:
    """Answers each call with the next scripted handler; keeps the bodies."""

    def __init__(self, *handlers: Handler | Exception) -> None:
        self.handlers = list(handlers)
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        vllm_request = CompletionRequest.model_validate(body)
        vllm_request.to_sampling_params(body["max_tokens"])  # vLLM takes every field
        self.bodies.append(body)
        self.headers.append(request.headers)
        handler = self.handlers.pop(0)
        if isinstance(handler, Exception):
            raise handler
        return handler(body)


def generator(upstream: Upstream) -> RemoteGenerator:
    client = httpx.AsyncClient(base_url="http://upstream/v1",
                               transport=httpx.MockTransport(upstream))
    renderer = SimpleNamespace(get_tokenizer=lambda: [0] * 100)  # prompts come rendered
    return RemoteGenerator(renderer, client, "http://upstream/v1", "m", 64)  # type: ignore[arg-type]


async def test_generate_sends_ids_and_fans_out_in_one_request() -> None:
    logprobs = {"tokens": ["a", "b"], "token_logprobs": [-0.5, -1.0], "text_offset": [0, 1],
                "top_logprobs": [{"a": -0.5, "x": -0.7, "y": -3.0}, {"z": -0.2, "b": -1.0}]}
    upstream = Upstream(lambda body: completion(
        choice(1, "ab", [4, 5], stop="\n\n", logprobs=logprobs),
        choice(0, "c", [6], finish="length", logprobs={**logprobs, "tokens": ["c"],
               "token_logprobs": [-2.0], "top_logprobs": [{"c": -2.0}]}),
        cached=3,
    ))
    sampling = Sampling(max_tokens=10, temperature=0.7, stop=("\n\n",), seed=4, top_logprobs=1,
                        logit_bias=((5, 2.0),), json_output=JsonOutput('{"type": "object"}'))
    generation = await generator(upstream).generate(PROMPT, 2, sampling)
    body = upstream.bodies[0]
    assert body["prompt"] == [1, 2, 3, 7, 8] and body["n"] == 2 and body["return_token_ids"]
    assert body["logprobs"] == 1 and body["seed"] == 4 and body["logit_bias"] == {"5": 2.0}
    assert body["structured_outputs"] == {"json": '{"type": "object"}'}
    assert generation.prompt_tokens == 5 and generation.cached_tokens == 3
    first, second = generation.samples
    assert (first.text, list(first.token_ids), first.stop_reason) == ("c", [6], "length")
    assert (second.stop_reason, second.stop_string) == ("stop", "\n\n")
    assert [entry.top for entry in second.logprobs or []] == [(("a", -0.5),), (("z", -0.2),)]
    assert second.cumulative_logprob == pytest.approx(-1.5)


async def test_every_call_of_a_request_names_it_for_logs_and_routers() -> None:
    """vLLM takes X-Request-Id as its own (unique per call); vllm-router's
    consistent_hash hashes X-Session-Id, the same for every call of one
    ponder request, so they share a replica and its prefix cache."""
    upstream = Upstream(*[lambda body: completion(choice(0, "x", [4]))] * 2)
    remote = generator(upstream)
    token = request_context._current.set(request_context.RequestContext(id="req-1"))
    try:
        for _ in range(2):
            await remote.generate(PROMPT, 1, Sampling(max_tokens=5))
    finally:
        request_context._current.reset(token)
    assert [h["x-session-id"] for h in upstream.headers] == ["req-1", "req-1"]
    ids = [h["x-request-id"] for h in upstream.headers]
    assert len(set(ids)) == 2 and all(i.startswith("req-1-") for i in ids)
    assert [b["user"] for b in upstream.bodies] == ["req-1", "req-1"]


async def test_max_tokens_defaults_to_the_room_left_and_is_checked() -> None:
    upstream = Upstream(lambda body: completion(choice(0, "", [], stop=None)))
    await generator(upstream).generate(PROMPT, 1, Sampling(max_tokens=None))
    assert upstream.bodies[0]["max_tokens"] == 64 - 5
    with pytest.raises(RequestRejected) as raised:
        await generator(Upstream()).generate(PROMPT, 1, Sampling(max_tokens=60))
    assert raised.value.param == "max_tokens"


async def test_stream_gives_deltas_per_child_and_the_cached_tokens() -> None:
    def chunk(*choices: dict[str, Any]) -> dict[str, Any]:
        return {"id": "c", "object": "text_completion", "created": 0, "model": "m",
                "choices": list(choices)}

    upstream = Upstream(lambda body: sse(
        chunk(choice(0, "a", [4], finish=None)),
        chunk(choice(1, "b", [5], finish=None)),
        chunk(choice(0, "", [], stop=None)),
        chunk(choice(1, "c", [6], stop="\n")),
        {"id": "c", "object": "text_completion", "created": 0, "model": "m", "choices": [],
         "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8,
                   "prompt_tokens_details": {"cached_tokens": 4}}},
    ))
    collector = SampleCollector(2)
    async for delta in generator(upstream).stream(PROMPT, 2, Sampling(max_tokens=5)):
        collector.add(delta)
    assert upstream.bodies[0]["stream"] and upstream.bodies[0]["stream_options"]
    generation = collector.generation()
    assert [s.text for s in generation.samples] == ["a", "bc"]
    assert [s.stop_reason for s in generation.samples] == ["eos", "stop"]
    assert generation.cached_tokens == 4


async def test_a_call_that_produced_nothing_is_retried_once() -> None:
    ok = Upstream(httpx.ConnectError("refused"),
                  lambda body: completion(choice(0, "x", [4])))
    remote = generator(ok)
    retried: list[None] = []
    remote.on_retry = lambda: retried.append(None)
    assert (await remote.generate(PROMPT, 1, Sampling(max_tokens=5))).samples[0].text == "x"
    assert len(retried) == 1 and len(ok.bodies) == 2

    down = Upstream(httpx.ConnectError("refused"), httpx.ConnectError("refused"))
    with pytest.raises(EngineUnavailable):
        await generator(down).generate(PROMPT, 1, Sampling(max_tokens=5))


@pytest.mark.parametrize(("status", "error"), [
    (500, UpstreamFailed), (502, UpstreamFailed), (503, EngineUnavailable), (504, UpstreamTimeout),
])
async def test_5xx_twice_is_an_openai_shaped_gateway_error(status: int, error: type) -> None:
    failing = Upstream(*[lambda body: httpx.Response(status, json={"error": {"message": "no"}})] * 2)
    with pytest.raises(error):
        await generator(failing).generate(PROMPT, 1, Sampling(max_tokens=5))
    assert len(failing.bodies) == 2


async def test_a_refusal_is_a_400_and_a_read_timeout_is_not_retried() -> None:
    refused = Upstream(lambda body: httpx.Response(
        400, json={"error": {"message": "bad grammar", "type": "BadRequestError", "param": None}}))
    with pytest.raises(RequestRejected) as raised:
        await generator(refused).generate(
            PROMPT, 1, Sampling(max_tokens=5, json_output=JsonOutput("{}")))
    assert raised.value.param == "response_format" and len(refused.bodies) == 1

    slow = Upstream(httpx.ReadTimeout("slow"))
    with pytest.raises(UpstreamTimeout):
        await generator(slow).generate(PROMPT, 1, Sampling(max_tokens=5))


async def test_a_stream_cut_before_output_is_retried_after_it_is_a_502() -> None:
    first = {"id": "c", "object": "text_completion", "created": 0, "model": "m",
             "choices": [choice(0, "a", [4], finish=None)]}
    whole = [first, {**first, "choices": [choice(0, "b", [5], stop=None)]}]
    retried = Upstream(lambda body: sse(done=False), lambda body: sse(*whole))
    texts = [d.text async for d in generator(retried).stream(PROMPT, 1, Sampling(max_tokens=5))]
    assert "".join(texts) == "ab" and len(retried.bodies) == 2

    cut = Upstream(lambda body: sse(first, done=False), lambda body: sse(*whole))
    with pytest.raises(UpstreamFailed):
        async for _ in generator(cut).stream(PROMPT, 1, Sampling(max_tokens=5)):
            pass
    assert len(cut.bodies) == 1


async def test_a_stream_that_breaks_with_any_error_ends_with_an_error_not_a_hang() -> None:
    """Not only httpx's HTTP errors: a closed client or a broken stream
    raises others, and the reader must hear of them."""
    first = {"id": "c", "object": "text_completion", "created": 0, "model": "m",
             "choices": [choice(0, "a", [4], finish=None)]}

    def broken(body: dict[str, Any]) -> httpx.Response:
        async def content() -> AsyncIterator[bytes]:
            yield f"data: {json.dumps(first)}\n\n".encode()
            raise RuntimeError("Cannot send a request, as the client has been closed.")

        return httpx.Response(200, content=content(),
                              headers={"content-type": "text/event-stream"})

    async def read() -> str:
        stream = generator(Upstream(broken)).stream(PROMPT, 1, Sampling(max_tokens=5))
        return "".join([d.text async for d in stream])

    with pytest.raises(UpstreamFailed, match="broke off"):
        await asyncio.wait_for(read(), timeout=10)


async def test_health_follows_the_upstream() -> None:
    statuses = [200, 503, 200, 503, 404]

    def health(request: httpx.Request) -> httpx.Response:
        return httpx.Response(statuses.pop(0))

    remote = generator(Upstream())
    remote.client = httpx.AsyncClient(transport=httpx.MockTransport(health))
    assert await remote.healthy()
    remote._health = (-10.0, True)  # as if the last check were old
    assert await remote.healthy()  # a router with one replica down: /readiness
    remote._health = (-10.0, True)
    assert not await remote.healthy()


async def test_callers_at_once_share_one_upstream_health_check() -> None:
    """Load balancers, Kubernetes and many ponder replicas probe at once: one
    call to the upstream at a time, whatever the number of callers, and a
    caller that leaves does not cancel it for the others."""
    calls: list[str] = []
    answer = asyncio.Event()

    async def health(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        await answer.wait()
        return httpx.Response(200)

    remote = generator(Upstream())
    remote.client = httpx.AsyncClient(transport=httpx.MockTransport(health))
    callers = [asyncio.create_task(remote.healthy()) for _ in range(50)]
    while not calls:
        await asyncio.sleep(0.01)
    callers[0].cancel()
    await asyncio.sleep(0.05)
    answer.set()
    results = await asyncio.gather(*callers[1:])
    assert all(results) and calls == ["/health"]
    remote._health = (-10.0, False)  # the answer grew old: asked again, once
    assert all(await asyncio.gather(*(remote.healthy() for _ in range(20))))
    assert calls == ["/health", "/health"]


def test_settings_for_a_remote_engine() -> None:
    assert Settings(engine="remote", engine_url="http://h:8000/v1").engine_url
    with pytest.raises(ValueError, match="needs --engine-url"):
        Settings(engine="remote")
    with pytest.raises(ValueError, match="for --engine remote"):
        Settings(engine_url="http://h:8000")
    with pytest.raises(ValueError, match="not an http"):
        Settings(engine="remote", engine_url="h:8000")
    assert api_root("http://h:8000") == api_root("http://h:8000/v1/") == "http://h:8000/v1"
