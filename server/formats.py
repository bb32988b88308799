"""The two OpenAI shapes ponder answers in, chat and plain completions: the
same strategy results, whole or as stream chunks. The routes pick one (a
new one per response: a stream keeps per-choice state, such as the tool
calls read so far); the strategies and the stream machinery never see the
difference."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from ponder.core.generation import TokenLogprob
from ponder.core.metering import Usage
from ponder.server.protocol.chat import (
    ChatCompletionChunk,
    ChatCompletionResponse,
    ChatLogprobs,
    Choice,
    ChunkChoice,
    Delta,
    ResponseMessage,
    completion_id,
)
from ponder.server.protocol.common import (
    CompletionTokensDetails,
    PonderInfo,
    PonderRun,
    PonderUsage,
    PromptTokensDetails,
    TokenLogprobInfo,
    TopLogprob,
    UsageInfo,
)
from ponder.server.protocol.completions import (
    CompletionChoice,
    CompletionChunk,
    CompletionLogprobs,
    CompletionResponse,
    text_completion_id,
)
from ponder.server.serving import RequestRun
from ponder.server.tool_calls import ToolCallStream
from ponder.strategies.base import StrategyResult

PieceKind = Literal["reasoning", "content"]
# What OpenAI (and vLLM) send for a log-probability of -inf, which JSON cannot carry.
LOWEST_LOGPROB = -9999.0


class ResponseFormat(Protocol):
    new_id: Callable[[], str]

    def response(self, results: list[StrategyResult]) -> BaseModel: ...

    def opening(self, index: int) -> BaseModel | None:
        """The choice's first chunk, before any text (chat announces the role)."""

    def piece(
        self, index: int, kind: PieceKind, text: str, token_ids: Sequence[int] = (),
        logprobs: Sequence[TokenLogprob] | None = None,
    ) -> BaseModel | None:
        """The chunk choice for a piece of a choice's text; None when there
        is nothing to send for it yet."""

    def finish(self, index: int, result: StrategyResult) -> list[BaseModel]:
        """The choice's last chunk choices, the last with its finish reason."""

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
    probes = result.usage.probe_tokens
    return PonderRun(
        samples=result.samples,
        usage=PonderUsage(probe_tokens=probes) if probes or result.early_exits is not None
        else None,
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
        strategy=_strategy_shown(run, results[0]),
        effort=run.effort,
        elapsed_ms=round((time.monotonic() - run.started) * 1000),
        choices=runs if len(runs) > 1 else None,
    )


def _strategy_shown(run: RequestRun, result: StrategyResult) -> dict[str, Any]:
    """The strategy as configured, and for ``auto`` what it decided."""
    shown = run.config.model_dump()
    if result.decision is not None:
        shown["decision"] = asdict(result.decision)
    return shown


def _reasoning(run: RequestRun, result: StrategyResult) -> dict[str, str | None]:
    trace = result.reasoning if run.visible else None
    return {"reasoning_content": trace, "reasoning": trace}


def _logprob(value: float) -> float:
    return max(value, LOWEST_LOGPROB) if not math.isnan(value) else LOWEST_LOGPROB


def _bytes(token: str) -> list[int]:
    return list(token.encode("utf-8", errors="replace"))


def chat_logprobs(
    entries: Sequence[TokenLogprob] | None, top: int | None
) -> ChatLogprobs | None:
    """OpenAI's chat shape, ``top`` alternatives per token; None when the
    request asked for no log-probabilities."""
    if top is None:
        return None
    return ChatLogprobs(content=[
        TokenLogprobInfo(
            token=entry.token, logprob=_logprob(entry.logprob), bytes=_bytes(entry.token),
            top_logprobs=[
                TopLogprob(token=token, logprob=_logprob(value), bytes=_bytes(token))
                for token, value in entry.top[:top]
            ],
        )
        for entry in entries or ()
    ])


def completion_logprobs(
    entries: Sequence[TokenLogprob] | None, top: int | None, offset: int = 0
) -> CompletionLogprobs | None:
    """The legacy shape: each token, its log-probability, a map of it and
    its ``top`` likeliest alternatives, and where it starts in the text
    (from ``offset``, for a streamed piece)."""
    if top is None:
        return None
    entries = entries or ()
    starts = []
    for entry in entries:
        starts.append(offset)
        offset += len(entry.token)
    return CompletionLogprobs(
        tokens=[entry.token for entry in entries],
        token_logprobs=[_logprob(entry.logprob) for entry in entries],
        top_logprobs=[
            {entry.token: _logprob(entry.logprob),
             **{token: _logprob(value) for token, value in entry.top[:top]}}
            for entry in entries
        ],
        text_offset=starts,
    )


class ChatFormat:
    new_id = staticmethod(completion_id)

    def __init__(self, run: RequestRun) -> None:
        self._run = run
        self._top = run.request.top_logprobs_asked
        self._tool_streams: dict[int, ToolCallStream] = {}

    def response(self, results: list[StrategyResult]) -> ChatCompletionResponse:
        choices = []
        for index, result in enumerate(results):
            content: str | None = result.content
            calls, finish = None, result.finish_reason
            if self._run.tools is not None:
                content, calls, finish = self._run.tools.message(result.content, finish)
            choices.append(Choice(
                index=index,
                message=ResponseMessage(
                    content=content, tool_calls=calls, **_reasoning(self._run, result)
                ),
                finish_reason=finish,
                logprobs=chat_logprobs(result.logprobs, self._top),
            ))
        return ChatCompletionResponse(
            model=self._run.request.model, choices=choices,
            usage=total_usage(results), ponder=ponder_info(self._run, results),
        )

    def opening(self, index: int) -> ChunkChoice:
        return ChunkChoice(index=index, delta=Delta(role="assistant", content=""))

    def piece(
        self, index: int, kind: PieceKind, text: str, token_ids: Sequence[int] = (),
        logprobs: Sequence[TokenLogprob] | None = None,
    ) -> ChunkChoice | None:
        if kind == "reasoning":
            return ChunkChoice(index=index, delta=Delta(reasoning_content=text, reasoning=text))
        entries = chat_logprobs(logprobs, self._top)
        if self._run.tools is None:
            return ChunkChoice(index=index, delta=Delta(content=text), logprobs=entries)
        content, calls = self._tool_stream(index).feed(text, token_ids)
        if content is None and not calls and entries is None:
            return None  # a parser holding back what may be the start of a call
        return ChunkChoice(
            index=index, delta=Delta(content=content, tool_calls=calls or None), logprobs=entries
        )

    def finish(self, index: int, result: StrategyResult) -> list[ChunkChoice]:
        if self._run.tools is None:
            return [ChunkChoice(index=index, delta=Delta(), finish_reason=result.finish_reason)]
        rest = self._tool_stream(index).finish()
        _, _, reason = self._run.tools.message(result.content, result.finish_reason)
        last = ChunkChoice(index=index, delta=Delta(), finish_reason=reason)
        return [ChunkChoice(index=index, delta=Delta(tool_calls=rest)), last] if rest else [last]

    def chunk(self, **fields: Any) -> str:
        return ChatCompletionChunk(**fields).model_dump_json()

    def _tool_stream(self, index: int) -> ToolCallStream:
        assert self._run.tools is not None
        if index not in self._tool_streams:
            self._tool_streams[index] = self._run.tools.new_stream()
        return self._tool_streams[index]


class CompletionFormat:
    """`text` is the answer; a visible trace goes in `reasoning_content` and
    `reasoning` beside it, as in a chat message."""

    new_id = staticmethod(text_completion_id)

    def __init__(self, run: RequestRun) -> None:
        self._run = run
        self._top = run.request.top_logprobs_asked
        self._sent: dict[int, int] = {}
        """Characters of each choice's text streamed so far."""

    def response(self, results: list[StrategyResult]) -> CompletionResponse:
        choices = [
            CompletionChoice(
                index=i, text=r.content, finish_reason=r.finish_reason,
                logprobs=completion_logprobs(r.logprobs, self._top), **_reasoning(self._run, r),
            )
            for i, r in enumerate(results)
        ]
        return CompletionResponse(
            model=self._run.request.model, choices=choices,
            usage=total_usage(results), ponder=ponder_info(self._run, results),
        )

    def opening(self, index: int) -> None:
        return None

    def piece(
        self, index: int, kind: PieceKind, text: str, token_ids: Sequence[int] = (),
        logprobs: Sequence[TokenLogprob] | None = None,
    ) -> CompletionChoice:
        if kind == "reasoning":
            return CompletionChoice(
                index=index, text="", finish_reason=None, reasoning_content=text, reasoning=text
            )
        offset = self._sent.get(index, 0)
        self._sent[index] = offset + len(text)
        return CompletionChoice(
            index=index, text=text, finish_reason=None,
            logprobs=completion_logprobs(logprobs, self._top, offset),
        )

    def finish(self, index: int, result: StrategyResult) -> list[CompletionChoice]:
        return [CompletionChoice(index=index, text="", finish_reason=result.finish_reason)]

    def chunk(self, **fields: Any) -> str:
        return CompletionChunk(**fields).model_dump_json()
