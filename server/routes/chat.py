"""POST /v1/chat/completions."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ponder.server.deps import ServiceDep
from ponder.server.errors import as_ponder_error
from ponder.server.protocol import ChatCompletionRequest, ChatCompletionResponse, ErrorResponse
from ponder.server.serving import build_response
from ponder.server.streaming import ChatStream
from ponder.strategies.base import StrategyResult

router = APIRouter(tags=["chat"])

ERRORS = {status: {"model": ErrorResponse} for status in (400, 401, 404, 413, 429, 503)}


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletionResponse,
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, service: ServiceDep
) -> ChatCompletionResponse | StreamingResponse:
    run = service.resolve(body)
    service.admit(run)
    try:
        if body.stream:
            stream = ChatStream(service, run)
            await stream.first_event()
            return StreamingResponse(stream.frames(), media_type="text/event-stream")
        results = await _until_disconnect(
            request, asyncio.gather(*(service.run_strategy(run, task) for task in run.tasks))
        )
    except Exception as error:
        service.finished(run, as_ponder_error(error).status)
        raise
    service.finished(run, 200)
    return build_response(run, results)


async def _until_disconnect(
    request: Request, work: asyncio.Future[list[StrategyResult]]
) -> list[StrategyResult]:
    """Run ``work``, cancelling it (and so its engine requests) if the client
    hangs up first: a client that leaves must not keep the engine busy."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(disconnected())
    try:
        await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not work.done():
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
    return work.result()
