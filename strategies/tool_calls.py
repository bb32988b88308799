"""Tool calls as strategies see them: what a sample called, and when two
samples called the same thing.

A request that offers tools comes with a :class:`ToolCallReader` that finds
the calls in a sample's text. When the request forces a call (one named
function, or ``tool_choice: "required"``) the engine generates the call
under a JSON schema, and the readers here parse that JSON; a request that
lets the model choose (``"auto"``) is read by the model's own format parser,
which the server provides. Either way a vote compares calls, not text: the
function name and the parsed arguments, so key order and whitespace never
split a vote.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from ponder.core.answers import canonical_json, json_value


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str
    """JSON text, as the model wrote it."""


@dataclass(frozen=True)
class ReadCalls:
    """A sample read for tool calls: the calls it made, and its text besides
    them (None when the calls are all of it)."""

    calls: list[ToolCall] = field(default_factory=list)
    content: str | None = None


class ToolCallReader(Protocol):
    def read(self, text: str) -> ReadCalls: ...


@dataclass(frozen=True)
class NamedCallReader:
    """``tool_choice`` names one function: the sample is its arguments."""

    name: str

    def read(self, text: str) -> ReadCalls:
        if not text.strip():
            return ReadCalls(content=None)
        return ReadCalls([ToolCall(self.name, text)])


@dataclass(frozen=True)
class RequiredCallsReader:
    """``tool_choice: "required"``: the sample is a JSON array of
    ``{"name": ..., "parameters": {...}}``, vLLM's shape for it."""

    single: bool = False
    """``parallel_tool_calls: false``: at most one call."""

    def read(self, text: str) -> ReadCalls:
        try:
            items = json.loads(text)
        except (ValueError, RecursionError):
            return ReadCalls(content=text or None)
        if not isinstance(items, list):
            return ReadCalls(content=text or None)
        calls = [
            ToolCall(item["name"], json.dumps(item.get("parameters", {}), ensure_ascii=False))
            for item in items
            if isinstance(item, dict) and isinstance(item.get("name"), str)
        ]
        return ReadCalls(calls[:1] if self.single else calls)


def calls_answer(calls: list[ToolCall]) -> str:
    """The calls as one canonical answer (as JSON answers are: keys sorted, no
    whitespace, ``1.0`` is ``1``): names with their parsed arguments.
    Arguments that are not JSON stay as written."""
    return canonical_json(
        [{"name": call.name, "arguments": _parsed(call.arguments)} for call in calls]
    )


def _parsed(arguments: str) -> Any:
    try:
        return json_value(arguments)
    except (ValueError, RecursionError):
        return arguments
