"""POST /v1/responses: OpenAI's Responses API over the same strategies."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from ponder.server.deps import ServiceDep
from ponder.server.protocol.responses import Response, ResponsesRequest
from ponder.server.responses import ResponsesFormat, ResponsesStream
from ponder.server.routes.respond import ERRORS, respond

router = APIRouter(tags=["responses"])


@router.post(
    "/v1/responses",
    response_model=Response,
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
)
async def create_response(
    body: ResponsesRequest, request: Request, service: ServiceDep
) -> BaseModel | StreamingResponse:
    return await respond(
        body.as_chat(), request, service, lambda run: ResponsesFormat(run, body),
        stream_type=ResponsesStream,
    )
