"""The Responses API's answer, whole or streamed, from the same strategy
results as chat.

The output is a ``reasoning`` item (the visible trace, and a summary of what
the strategy did when one is asked for) then a ``message`` item. A stream
sends the typed events in OpenAI's order (``response.created``,
``response.in_progress``, for each item ``output_item.added``,
``content_part.added``, its text deltas, ``*.done``, ``content_part.done``,
``output_item.done``, then ``response.completed``), each with a sequence
number, and no ``[DONE]``; hidden progress travels as SSE comments, which
clients skip.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel

from ponder.server.errors import PonderError
from ponder.server.formats import ponder_info, ponder_run, total_usage
from ponder.server.protocol.responses import (
    IncompleteDetails,
    InputTokensDetails,
    OutputMessage,
    OutputText,
    OutputTokensDetails,
    ReasoningItem,
    ReasoningText,
    Response,
    ResponsesRequest,
    ResponseUsage,
    SummaryText,
    response_id,
)
from ponder.server.serving import RequestRun
from ponder.server.streaming import ResponseStream, comment
from ponder.strategies.base import StrategyResult


def _item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def strategy_summary(run: RequestRun, result: StrategyResult) -> str:
    """What the strategy did, in a sentence: the summary a hidden trace can
    still give (ponder runs no model to summarise the trace itself)."""
    info = ponder_run(result, include_candidates=False)
    said = f"{run.strategy.name} drew {info.samples} sample{'s' * (info.samples != 1)}"
    if info.votes:
        ranked = sorted(info.votes.items(), key=lambda vote: -vote[1])
        said += "; answers: " + ", ".join(f"{answer} ({count})" for answer, count in ranked)
    if info.answer is not None:
        said += f"; chose {info.answer}"
    return said + "."


class ResponsesFormat:
    """Builds the whole :class:`Response`; the stream reuses its pieces."""

    new_id = staticmethod(response_id)

    def __init__(self, run: RequestRun, body: ResponsesRequest) -> None:
        self.run = run
        self.body = body

    def envelope(self, id: str, status: str, **fields: Any) -> Response:
        body = self.body
        reasoning = {"effort": body.effort, "summary": body.summary}
        return Response(
            id=id, status=status, model=body.model, instructions=body.instructions,
            max_output_tokens=body.max_output_tokens, reasoning=reasoning,
            temperature=body.temperature, top_p=body.top_p, metadata=body.metadata or {},
            user=body.user, **fields,
        )

    def usage(self, results: list[StrategyResult]) -> ResponseUsage:
        usage = total_usage(results)
        return ResponseUsage(
            input_tokens=usage.prompt_tokens,
            input_tokens_details=InputTokensDetails(
                cached_tokens=usage.prompt_tokens_details.cached_tokens
            ),
            output_tokens=usage.completion_tokens,
            output_tokens_details=OutputTokensDetails(
                reasoning_tokens=usage.completion_tokens_details.reasoning_tokens
            ),
            total_tokens=usage.total_tokens,
        )

    def trace_item(self, id: str, result: StrategyResult) -> ReasoningItem | None:
        if not (self.run.visible and result.reasoning):
            return None
        return ReasoningItem(id=id, status="completed",
                             content=[ReasoningText(text=result.reasoning)])

    def summary_item(self, id: str, result: StrategyResult) -> ReasoningItem | None:
        """Known only once the strategy has chosen, so it comes after the
        message, streamed or not."""
        if not self.body.summary:
            return None
        return ReasoningItem(id=id, status="completed",
                             summary=[SummaryText(text=strategy_summary(self.run, result))])

    @staticmethod
    def message_item(id: str, result: StrategyResult) -> OutputMessage:
        status = "incomplete" if result.finish_reason == "length" else "completed"
        return OutputMessage(id=id, status=status, content=[OutputText(text=result.content)])

    def finished(self, id: str, result: StrategyResult, output: list[Any]) -> Response:
        cut = result.finish_reason == "length"
        return self.envelope(
            id, "incomplete" if cut else "completed", output=output,
            usage=self.usage([result]), ponder=ponder_info(self.run, [result]),
            incomplete_details=IncompleteDetails(reason="max_output_tokens") if cut else None,
        )

    def response(self, results: list[StrategyResult]) -> Response:
        result = results[0]  # the Responses API has no `n`
        items = [self.trace_item(_item_id("rs"), result),
                 self.message_item(_item_id("msg"), result),
                 self.summary_item(_item_id("rs"), result)]
        return self.finished(self.new_id(), result, [item for item in items if item is not None])


class ResponsesStream(ResponseStream):
    """The typed events of one response, from the strategy's events."""

    shape: ResponsesFormat

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sequence = 0
        self._items: list[BaseModel] = []
        self._open: dict[str, Any] | None = None
        """The item being streamed: its kind, id, output index and text so far."""

    def _event(self, kind: str, **fields: Any) -> str:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return f"event: {kind}\ndata: {json.dumps(payload)}\n\n"

    def _dump(self, model: BaseModel) -> dict[str, Any]:
        return model.model_dump(mode="json", exclude_none=True)

    async def _chunks(self) -> AsyncIterator[str]:
        opened = self._dump(self.shape.envelope(self.id, "in_progress"))
        yield self._event("response.created", response=opened)
        yield self._event("response.in_progress", response=opened)
        while True:
            event = self._first or await self.queue.get()
            self._first = None
            if event.kind == "error":
                assert event.error is not None
                raise event.error
            if event.kind == "comment":
                yield comment(event.text)
            elif event.kind in ("reasoning", "content"):
                yield self._delta("reasoning" if event.kind == "reasoning" else "message",
                                  event.text)
            elif event.kind == "done":
                assert event.result is not None
                yield self._completed(event.result)
                return

    def _delta(self, kind: str, text: str) -> str:
        frames = ""
        if self._open is not None and self._open["kind"] != kind:
            frames += self._close()
        if self._open is None:
            frames += self._start(kind)
        self._open["text"] += text  # type: ignore[index]
        where = self._where()
        name = "response.reasoning_text.delta" if kind == "reasoning" else (
            "response.output_text.delta")
        extra = {} if kind == "reasoning" else {"logprobs": []}
        return frames + self._event(name, **where, delta=text, **extra)

    def _where(self) -> dict[str, Any]:
        assert self._open is not None
        return {"item_id": self._open["id"], "output_index": self._open["index"],
                "content_index": 0}

    def _start(self, kind: str) -> str:
        prefix = "rs" if kind == "reasoning" else "msg"
        self._open = {"kind": kind, "id": _item_id(prefix), "index": len(self._items), "text": ""}
        if kind == "reasoning":
            item: BaseModel = ReasoningItem(id=self._open["id"], status="in_progress")
            part: dict[str, Any] = {"type": "reasoning_text", "text": ""}
        else:
            item = OutputMessage(id=self._open["id"], status="in_progress", content=[])
            part = self._dump(OutputText(text=""))
        return (self._event("response.output_item.added", output_index=self._open["index"],
                            item=self._dump(item))
                + self._event("response.content_part.added", **self._where(), part=part))

    def _close(self, result: StrategyResult | None = None) -> str:
        assert self._open is not None
        text, where, kind = self._open["text"], self._where(), self._open["kind"]
        if kind == "reasoning":
            item: BaseModel = ReasoningItem(
                id=self._open["id"], status="completed", content=[ReasoningText(text=text)]
            )
            part: dict[str, Any] = {"type": "reasoning_text", "text": text}
            frames = self._event("response.reasoning_text.done", **where, text=text)
        else:
            status = "incomplete" if result and result.finish_reason == "length" else "completed"
            item = OutputMessage(id=self._open["id"], status=status,
                                 content=[OutputText(text=text)])
            part = self._dump(OutputText(text=text))
            frames = self._event("response.output_text.done", **where, text=text, logprobs=[])
        self._items.append(item)
        self._open = None
        return (frames + self._event("response.content_part.done", **where, part=part)
                + self._event("response.output_item.done", output_index=where["output_index"],
                              item=self._dump(item)))

    def _completed(self, result: StrategyResult) -> str:
        """Close what is open; a message item always ends the output (an
        empty one when the strategy streamed no content)."""
        frames = ""
        if self._open is not None and self._open["kind"] == "reasoning":
            frames += self._close()
        if self._open is None:
            frames += self._start("message")
            if result.content:
                frames += self._delta("message", result.content)
        frames += self._close(result)
        summary = self.shape.summary_item(_item_id("rs"), result)
        if summary is not None:  # it comes whole, once the strategy has chosen
            index = len(self._items)
            self._items.append(summary)
            frames += (self._event("response.output_item.added", output_index=index,
                                   item=self._dump(summary))
                       + self._event("response.output_item.done", output_index=index,
                                     item=self._dump(summary)))
        final = self.shape.finished(self.id, result, self._items)
        kind = "response.incomplete" if final.status == "incomplete" else "response.completed"
        return frames + self._event(kind, response=self._dump(final))

    def _error_frame(self, error: PonderError) -> str:
        return self._event("error", code=error.code or error.type, message=error.message,
                           param=error.param)

    def _closing_frame(self) -> str:
        return ""
