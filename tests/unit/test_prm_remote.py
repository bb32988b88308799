"""The remote PRM against an in-test app that speaks vLLM's pooling API:
requests are validated by vLLM's own request model and answered with its
own response model, so a drift in either shape fails here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from vllm.entrypoints.pooling.pooling.protocol import (
    PoolingChatRequest,
    PoolingResponse,
    PoolingResponseData,
)
from vllm.entrypoints.serve.engine.protocol import UsageInfo

from ponder.bench.servers import free_port
from ponder.core.scoring import Solution
from ponder.prm.prompts import QWEN_STEP_TAG, QWEN_SYSTEM
from ponder.prm.registry import open_prms, parse_prm_spec
from ponder.prm.remote import RemotePRM, RemotePRMError

from ..fakes import ScriptedGenerator, as_solutions

QUESTION = "What is 2 + 2?"


def fake_pooling_server(*, drop_a_step: bool = False) -> FastAPI:
    """A Qwen2.5-Math-PRM stand-in: P(good) is 0.9 for a step that says
    "right", 0.2 otherwise; a "token" is a word."""
    app = FastAPI()
    app.state.requests = []

    @app.post("/pooling")
    async def pooling(raw: Request) -> JSONResponse:
        request = PoolingChatRequest.model_validate(await raw.json())
        app.state.requests.append(request)
        answer = request.messages[-1]["content"]
        steps = answer.split(QWEN_STEP_TAG)[:-1]
        rows = [[0.1, 0.9] if "right" in step else [0.8, 0.2] for step in steps]
        if drop_a_step:
            rows = rows[1:]
        words = sum(len(str(m["content"]).split()) for m in request.messages)
        response = PoolingResponse(
            model=request.model or "qwen-prm",
            data=[PoolingResponseData(index=0, data=rows)],
            usage=UsageInfo(prompt_tokens=words, total_tokens=words),
        )
        return JSONResponse(response.model_dump())

    return app


@contextlib.asynccontextmanager
async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://prm.test") as client:
        yield client


async def test_scores_each_step_with_p_good_and_counts_prompt_tokens() -> None:
    app = fake_pooling_server()
    solutions = as_solutions(
        ["2 + 2 = 4 is right", "so 4, right"], [], ["2 + 2 = 5", "so 5, right", "done"]
    )
    async with client_for(app) as client:
        scored = await RemotePRM(client, model="qwen-prm").score(QUESTION, solutions)
    assert scored.scores == [[0.9, 0.9], [], [0.2, 0.9, 0.2]]
    assert len(app.state.requests) == 2  # no request for the empty candidate
    words = [sum(len(str(m["content"]).split()) for m in r.messages) for r in app.state.requests]
    assert scored.tokens == sum(words)


async def test_a_solution_with_no_new_step_costs_no_request() -> None:
    app = fake_pooling_server()
    known = Solution(("2 + 2 = 4 is right",), known=(0.75,))
    async with client_for(app) as client:
        scored = await RemotePRM(client).score(QUESTION, [known])
    assert scored.scores == [[0.75]] and scored.tokens == 0
    assert app.state.requests == []


async def test_sends_qwen_prm_conversation() -> None:
    app = fake_pooling_server()
    async with client_for(app) as client:
        prm = RemotePRM(client, model="qwen-prm")
        await prm.score(QUESTION, as_solutions([f"a {QWEN_STEP_TAG} step", "b"]))
    request = app.state.requests[0]
    assert request.model == "qwen-prm"
    assert [m["role"] for m in request.messages] == ["system", "user", "assistant"]
    assert request.messages[0]["content"] == QWEN_SYSTEM
    assert request.messages[1]["content"] == QUESTION
    # A tag inside a step is removed: one tag per step, after each.
    assert request.messages[2]["content"] == f"a  step{QWEN_STEP_TAG}b{QWEN_STEP_TAG}"


async def test_wrong_step_count_is_an_error_naming_the_tag() -> None:
    async with client_for(fake_pooling_server(drop_a_step=True)) as client:
        with pytest.raises(RemotePRMError, match="step tag"):
            await RemotePRM(client).score(QUESTION, as_solutions(["one", "two"]))


@pytest.mark.parametrize(
    ("status", "body"), [(500, '{"error": "boom"}'), (200, '{"object": "list"}'), (200, "<html>")]
)
async def test_failures_and_foreign_answers_are_remote_prm_errors(status: int, body: str) -> None:
    app = FastAPI()

    @app.post("/pooling")
    async def pooling() -> Response:
        return Response(body, status_code=status, media_type="application/json")

    async with client_for(app) as client:
        with pytest.raises(RemotePRMError):
            await RemotePRM(client).score(QUESTION, as_solutions(["one"]))


async def test_through_the_registry_over_real_http() -> None:
    app = fake_pooling_server()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        spec = parse_prm_spec(f"qwen=remote:http://127.0.0.1:{port}?model=qwen-prm")
        async with open_prms([spec]) as factories:
            prm = factories["qwen"](ScriptedGenerator.of(""))
            scored = await prm.score(QUESTION, as_solutions(["it is right"], ["it is wrong"]))
        assert scored.scores == [[0.9], [0.2]]
        assert {r.model for r in app.state.requests} == {"qwen-prm"}
    finally:
        server.should_exit = True
        await serving
