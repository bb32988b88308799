"""The two OpenAI shapes ponder answers in, chat and plain completions: the
same strategy results, whole or as stream chunks. The routes pick one; the
strategies and the stream machinery never see the difference."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from ponder.core.metering import Usage
from ponder.server.protocol import (
    ChatCompletionChunk,
    ChatCompletionResponse,
    Choice,
    ChunkChoice,
    CompletionChoice,
    CompletionChunk,
    CompletionResponse,
    CompletionTokensDetails,
    Delta,
    PonderInfo,
    PonderRun,
    PromptTokensDetails,
    ResponseMessage,
    UsageInfo,
    completion_id,
    text_completion_id,
)
from ponder.server.serving import RequestRun
from ponder.strategies.base import StrategyResult

PieceKind = Literal["reasoning", "content"]


class ResponseFormat(Protocol):
    new_id: Callable[[], str]

    def response(self, run: RequestRun, results: list[StrategyResult]) -> BaseModel: ...

    def opening(self, index: int) -> BaseModel | None:
        """The choice's first chunk, before any text (chat announces the role)."""

    def piece(self, index: int, kind: PieceKind, text: str) -> BaseModel: ...

    def finish(self, index: int, reason: str) -> BaseModel: ...

    def chunk(self, **fields: Any) -> str:
        """One stream chunk as JSON, from its id, created, model, choices and
        optional usage and ponder."""


def total_usage(results: list[StrategyResult]) -> UsageInfo:
    usage = Usage()
    for result in results:
        usage += result.usage
    return UsageInfo(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.prompt_tokens + usage.completion_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=usage.cached_tokens),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=usage.reasoning_tokens),
        scoring_tokens=usage.scoring_tokens,
    )


def ponder_run(result: StrategyResult, include_candidates: bool) -> PonderRun:
    return PonderRun(
        samples=result.samples,
        answer=result.answer,
        votes=result.votes,
        scores=result.scores,
        stopped_early=result.stopped_early,
        budget_exhausted=result.budget_exhausted,
        details=result.details() or None,
        candidates=result.candidates if include_candidates else None,
        tree=result.tree if include_candidates else None,
    )


def ponder_info(run: RequestRun, results: list[StrategyResult]) -> PonderInfo:
    runs = [ponder_run(r, run.request.include_candidates) for r in results]
    return PonderInfo(
        **runs[0].model_dump(),
        strategy=run.config.model_dump(),
        elapsed_ms=round((time.monotonic() - run.started) * 1000),
        choices=runs if len(runs) > 1 else None,
    )


def _reasoning(run: RequestRun, result: StrategyResult) -> dict[str, str | None]:
    trace = result.reasoning if run.visible else None
    return {"reasoning_content": trace, "reasoning": trace}


class ChatFormat:
    new_id = staticmethod(completion_id)

    def response(self, run: RequestRun, results: list[StrategyResult]) -> ChatCompletionResponse:
        choices = [
            Choice(
                index=i,
                message=ResponseMessage(content=r.content, **_reasoning(run, r)),
                finish_reason=r.finish_reason,
            )
            for i, r in enumerate(results)
        ]
        return ChatCompletionResponse(
            model=run.request.model, choices=choices,
            usage=total_usage(results), ponder=ponder_info(run, results),
        )

    def opening(self, index: int) -> ChunkChoice:
        return ChunkChoice(index=index, delta=Delta(role="assistant", content=""))

    def piece(self, index: int, kind: PieceKind, text: str) -> ChunkChoice:
        if kind == "reasoning":
            return ChunkChoice(index=index, delta=Delta(reasoning_content=text, reasoning=text))
        return ChunkChoice(index=index, delta=Delta(content=text))

    def finish(self, index: int, reason: str) -> ChunkChoice:
        return ChunkChoice(index=index, delta=Delta(), finish_reason=reason)

    def chunk(self, **fields: Any) -> str:
        return ChatCompletionChunk(**fields).model_dump_json()


class CompletionFormat:
    """`text` is the answer; a visible trace goes in `reasoning_content` and
    `reasoning` beside it, as in a chat message."""

    new_id = staticmethod(text_completion_id)

    def response(self, run: RequestRun, results: list[StrategyResult]) -> CompletionResponse:
        choices = [
            CompletionChoice(
                index=i, text=r.content, finish_reason=r.finish_reason, **_reasoning(run, r)
            )
            for i, r in enumerate(results)
        ]
        return CompletionResponse(
            model=run.request.model, choices=choices,
            usage=total_usage(results), ponder=ponder_info(run, results),
        )

    def opening(self, index: int) -> None:
        return None

    def piece(self, index: int, kind: PieceKind, text: str) -> CompletionChoice:
        if kind == "reasoning":
            return CompletionChoice(
                index=index, text="", finish_reason=None, reasoning_content=text, reasoning=text
            )
        return CompletionChoice(index=index, text=text, finish_reason=None)

    def finish(self, index: int, reason: str) -> CompletionChoice:
        return CompletionChoice(index=index, text="", finish_reason=reason)

    def chunk(self, **fields: Any) -> str:
        return CompletionChunk(**fields).model_dump_json()


CHAT = ChatFormat()
COMPLETION = CompletionFormat()
