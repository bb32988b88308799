"""POST /v1/chat/completions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from ponder.server.deps import ServiceDep
from ponder.server.formats import ChatFormat
from ponder.server.protocol.chat import ChatCompletionRequest, ChatCompletionResponse
from ponder.server.routes.respond import ERRORS, respond

router = APIRouter(tags=["chat"])


@router.post(
    "/v1/chat/completions",
    response_model=ChatCompletionResponse,
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
)
async def create_chat_completion(
    body: ChatCompletionRequest, request: Request, service: ServiceDep
) -> BaseModel | StreamingResponse:
    return await respond(body, request, service, ChatFormat)
