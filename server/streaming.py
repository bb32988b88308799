"""Server-Sent Events for chat and completions, in two layers as vLLM does it: strategy runs
push typed events into a queue; one generator turns them into OpenAI chunks,
turns a late failure into an error chunk, and always ends with ``[DONE]``.

The strategies run in tasks owned by the response: when the client goes
away Starlette cancels the response, whose ``finally`` cancels the tasks,
which aborts their requests in the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ponder.core.generation import TokenLogprob
from ponder.server.errors import (
    CLIENT_CLOSED_REQUEST,
    PonderError,
    ShuttingDown,
    as_ponder_error,
    error_body,
    log_failure,
)
from ponder.server.formats import PieceKind, ResponseFormat, ponder_info, total_usage
from ponder.server.protocol.common import PonderInfo
from ponder.server.serving import RequestRun, StrategyService
from ponder.strategies.base import StrategyResult, TreeNode

# How long to wait for a run's first event before committing to a 200: a
# request refused at once still gets a proper HTTP error instead of an error
# chunk. Prompts are checked before this (``StrategyService.check_prompts``):
# rendering a long one can take longer on a loaded machine.
FIRST_EVENT_GRACE_S = 0.25


@dataclass
class Event:
    kind: Literal["reasoning", "content", "comment", "tree", "done", "error"]
    choice: int
    text: str = ""
    token_ids: Sequence[int] = ()
    logprobs: Sequence[TokenLogprob] | None = None
    result: StrategyResult | None = None
    error: BaseException | None = None
    tree: list[TreeNode] | None = None


class QueueEmitter:
    """The strategies' :class:`Emitter` for one choice of a streaming request."""

    def __init__(self, queue: asyncio.Queue[Event], choice: int, visible: bool,
                 with_tree: bool = False) -> None:
        self._queue = queue
        self._choice = choice
        self._visible = visible
        self._with_tree = with_tree

    async def reasoning(self, text: str) -> None:
        if self._visible:
            self._queue.put_nowait(Event("reasoning", self._choice, text))

    async def content(
        self, text: str, token_ids: Sequence[int] = (),
        logprobs: Sequence[TokenLogprob] | None = None,
    ) -> None:
        self._queue.put_nowait(Event("content", self._choice, text, token_ids, logprobs))

    async def progress(self, text: str) -> None:
        kind: Literal["reasoning", "comment"] = "reasoning" if self._visible else "comment"
        self._queue.put_nowait(Event(kind, self._choice, text))

    async def tree(self, nodes: list[TreeNode]) -> None:
        if self._with_tree:
            self._queue.put_nowait(Event("tree", self._choice, tree=nodes))


class ResponseStream:
    """A started streaming request: its strategy tasks and their events."""

    def __init__(self, service: StrategyService, run: RequestRun, shape: ResponseFormat) -> None:
        self.service = service
        self.run = run
        self.shape = shape
        self.queue: asyncio.Queue[Event] = asyncio.Queue()
        self.tasks = [asyncio.create_task(self._run_batch(batch)) for batch in run.batches]
        self._abort_watch = asyncio.create_task(self._watch_for_abort())
        self._first: Event | None = None
        self.id = shape.new_id()
        self.created = int(time.time())

    async def first_event(self) -> None:
        """Wait briefly for the first event; re-raise it if it is a failure
        (before any byte is sent, so it can still be an HTTP error)."""
        with contextlib.suppress(asyncio.TimeoutError):
            self._first = await asyncio.wait_for(self.queue.get(), FIRST_EVENT_GRACE_S)
        if self._first is not None and self._first.kind == "error":
            await self.close()
            assert self._first.error is not None
            raise self._first.error

    async def close(self) -> None:
        for task in (*self.tasks, self._abort_watch):
            task.cancel()
        await asyncio.gather(*self.tasks, self._abort_watch, return_exceptions=True)

    async def _watch_for_abort(self) -> None:
        """The server's time to drain is up: end the stream with an error."""
        await self.service.lifecycle.aborted.wait()
        error = ShuttingDown("The server shut down before this request finished; retry it.")
        self.queue.put_nowait(Event("error", 0, error=error))

    async def _run_batch(self, batch: range) -> None:
        emitters = [QueueEmitter(self.queue, choice, self.run.visible,
                                 with_tree=self.run.request.include_candidates)
                    for choice in batch]
        try:
            results = await self.service.run_batch(self.run, batch, emitters)
        except Exception as error:  # noqa: BLE001 - forwarded to the client as an error chunk
            self.queue.put_nowait(Event("error", batch.start, error=error))
        else:
            for choice, result in zip(batch, results):
                self.queue.put_nowait(Event("done", choice, result=result))

    async def frames(self) -> AsyncIterator[str]:
        status = CLIENT_CLOSED_REQUEST
        try:
            async for frame in self._chunks():
                yield frame
            status = 200
        except Exception as exc:  # noqa: BLE001 - after the 200, errors travel in-band
            error = as_ponder_error(exc)
            status = error.status
            log_failure(error, exc)
            yield self._error_frame(error)
        finally:
            try:
                await self.close()
            finally:
                # A client that left cancels us mid-close: still give the slot back.
                self.service.finished(self.run, status)
        yield self._closing_frame()

    def _error_frame(self, error: PonderError) -> str:
        return _data(error_body(error).model_dump_json())

    def _closing_frame(self) -> str:
        return "data: [DONE]\n\n"

    async def _chunks(self) -> AsyncIterator[str]:
        results: dict[int, StrategyResult] = {}
        openings = [
            opening for i in range(len(self.run.tasks))
            if (opening := self.shape.opening(i)) is not None
        ]
        if openings:
            yield self._chunk(openings)
        while len(results) < len(self.run.tasks):
            event = self._first or await self.queue.get()
            self._first = None
            if event.kind == "error":
                assert event.error is not None
                raise event.error
            if frame := self._frame(event, results):
                yield frame
        if self._include_usage:
            yield self._chunk([], usage=total_usage([results[i] for i in sorted(results)]))

    @property
    def _include_usage(self) -> bool:
        options = self.run.request.stream_options
        return bool(options and options.include_usage)

    def _frame(self, event: Event, results: dict[int, StrategyResult]) -> str:
        """The SSE frames an event makes (none while a tool-call parser holds
        text back)."""
        if event.kind == "comment":
            return comment(event.text)
        if event.kind == "tree":  # the search so far, in ponder (no choice text)
            return self._chunk([], ponder=PonderInfo(
                samples=len(event.tree or ()), strategy=self.run.config.model_dump(),
                elapsed_ms=round((time.monotonic() - self.run.started) * 1000), tree=event.tree,
            ))
        if event.kind == "done":
            assert event.result is not None
            results[event.choice] = event.result
            *pieces, finish = self.shape.finish(event.choice, event.result)
            return "".join(self._chunk([piece]) for piece in pieces) + self._chunk(
                [finish], ponder=ponder_info(self.run, [event.result])
            )
        kind: PieceKind = "reasoning" if event.kind == "reasoning" else "content"
        piece = self.shape.piece(event.choice, kind, event.text, event.token_ids, event.logprobs)
        return "" if piece is None else self._chunk([piece])

    def _chunk(self, choices: list[Any], **extra: object) -> str:
        return _data(self.shape.chunk(
            id=self.id, created=self.created, model=self.run.request.model, choices=choices,
            **extra,
        ))


def _data(payload: str) -> str:
    return f"data: {payload}\n\n"


def comment(text: str) -> str:
    """Progress a client need not parse (hidden reasoning), as SSE comments."""
    return "".join(f": {line}\n" for line in text.splitlines() or [""]) + "\n"
