"""Tool calling for one chat request, as vLLM's server does it: the JSON
schema a forced call is generated under, and how the model's calls are
read, whole (by strategies that vote, and for the response) or as they
stream (OpenAI's tool-call deltas).

* A named function or ``tool_choice: "required"``: the engine generates the
  call under the JSON schema vLLM builds for it (the function's parameters;
  an array of ``{"name", "parameters"}`` objects), so the call is always
  well-formed, for any model and with no parser.
* ``"auto"``: the model writes its calls in its own format, read by the
  vLLM tool parser named with ``--tool-call-parser`` (as ``vllm serve``
  does); without one a request cannot be read, and is a 400.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vllm.entrypoints.generate.base.protocol import DeltaToolCall
from vllm.entrypoints.openai.chat_completion.protocol import (
    ChatCompletionRequest as VLLMChatRequest,
)
from vllm.renderers.chat_utils import make_tool_call_id
from vllm.tool_parsers.abstract_tool_parser import ToolParser, ToolParserManager
from vllm.tool_parsers.streaming import (
    extract_named_tool_call_streaming,
    extract_required_tool_call_streaming,
)
from vllm.tool_parsers.utils import get_json_schema_from_tools

from ponder.core.generation import JsonOutput
from ponder.server.errors import InvalidRequest
from ponder.server.protocol.chat import (
    ChatCompletionRequest,
    FunctionCall,
    NamedToolChoice,
    ToolCall,
    ToolCallDelta,
)
from ponder.strategies.tool_calls import (
    NamedCallReader,
    ReadCalls,
    RequiredCallsReader,
    ToolCallReader,
)
from ponder.strategies.tool_calls import ToolCall as CoreToolCall


class ToolCallStream(Protocol):
    """One choice's calls, read as its content streams."""

    def feed(self, text: str, token_ids: Sequence[int]) -> tuple[str | None, list[ToolCallDelta]]:
        """The content and tool-call deltas that ``text`` completes."""
        ...

    def finish(self) -> list[ToolCallDelta]:
        """Argument text a parser read but had not sent when the choice ended."""
        ...


@dataclass(frozen=True)
class ToolUse:
    """A request's tool calling: what constrains the engine, and how calls
    are read."""

    reader: ToolCallReader
    new_stream: Callable[[], ToolCallStream]
    schema: dict[str, Any] | None = None
    """For a forced call: the JSON schema it is generated under."""
    named: bool = False
    keeps_special_tokens: bool = False
    """The parser reads markup the tokenizer calls special (hermes)."""

    @property
    def json_output(self) -> JsonOutput | None:
        return None if self.schema is None else JsonOutput(json.dumps(self.schema), "tools")

    def message(
        self, content: str, finish_reason: str
    ) -> tuple[str | None, list[ToolCall] | None, str]:
        """A choice's message content, tool calls and finish reason, from its
        content: OpenAI's ``tool_calls`` when a call ended the choice, except
        for a named function (``stop``, as at OpenAI and vLLM)."""
        read = self.reader.read(content)
        if not read.calls:
            return content, None, finish_reason
        calls = [
            ToolCall(
                id=make_tool_call_id(),
                function=FunctionCall(name=call.name, arguments=call.arguments),
            )
            for call in read.calls
        ]
        called = finish_reason == "stop" and not self.named
        return read.content, calls, "tool_calls" if called else finish_reason


@dataclass
class ToolParsers:
    """The server's tool-call parser (``--tool-call-parser``), if any, and
    the tokenizer parsers read token ids with."""

    name: str | None = None
    tokenizer: Any = None
    _parser: type[ToolParser] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.name is None:
            return
        try:
            self._parser = ToolParserManager.get_tool_parser(self.name)
        except KeyError:  # stops the server at start-up, saying what would do
            known = ", ".join(sorted({*ToolParserManager.tool_parsers,
                                      *ToolParserManager.lazy_parsers}))
            raise ValueError(
                f"--tool-call-parser {self.name!r} is not one of vLLM's: {known}"
            ) from None

    def for_request(self, request: ChatCompletionRequest) -> ToolUse | None:
        choice = request.effective_tool_choice
        if not request.tools or choice == "none":
            return None
        single = not request.parallel_tool_calls
        vllm_request = VLLMChatRequest.model_validate({
            "messages": [],
            "tools": [tool.model_dump(exclude_none=True) for tool in request.tools],
            "tool_choice": choice.model_dump() if isinstance(choice, NamedToolChoice) else choice,
            "parallel_tool_calls": request.parallel_tool_calls,
        })
        schema = get_json_schema_from_tools(
            vllm_request.tool_choice, vllm_request.tools, vllm_request.parallel_tool_calls
        )
        if isinstance(choice, NamedToolChoice):
            name = choice.function.name
            return ToolUse(NamedCallReader(name), lambda: _NamedStream(name, self.tokenizer),
                           schema, named=True)
        if choice == "required":
            return ToolUse(RequiredCallsReader(single), lambda: _RequiredStream(single), schema)
        if self._parser is None:
            raise InvalidRequest(
                'tool_choice "auto" (the default when tools are given) needs the server started '
                "with --tool-call-parser, which reads the model's own call format; "
                '"required" and a named function work without one.',
                param="tool_choice",
            )
        parser = self._parser
        adjusted = parser(self.tokenizer, vllm_request.tools).adjust_request(vllm_request)
        return ToolUse(
            _ParserReader(parser, self.tokenizer, vllm_request, single),
            lambda: _ParserStream(parser(self.tokenizer, vllm_request.tools), vllm_request, single),
            keeps_special_tokens=adjusted.skip_special_tokens is False,
        )


@dataclass(frozen=True)
class _ParserReader:
    parser: type[ToolParser]
    tokenizer: Any
    request: VLLMChatRequest
    single: bool

    def read(self, text: str) -> ReadCalls:
        found = self.parser(self.tokenizer, self.request.tools).extract_tool_calls(
            text, self.request
        )
        if not found.tools_called:
            return ReadCalls(content=text or None)
        calls = [CoreToolCall(c.function.name, c.function.arguments) for c in found.tool_calls]
        return ReadCalls(calls[:1] if self.single else calls, found.content or None)


def _deltas(found: Sequence[DeltaToolCall], single: bool) -> list[ToolCallDelta]:
    """vLLM's deltas in ponder's shape; with ``parallel_tool_calls: false``
    only the first call's (as vLLM filters them)."""
    return [
        ToolCallDelta.model_validate(delta.model_dump(exclude_none=True))
        for delta in found if not (single and delta.index > 0)
    ]


class _NamedStream:
    def __init__(self, name: str, tokenizer: Any) -> None:
        self._name = name
        self._tokenizer = tokenizer
        self._announced = False

    def feed(self, text: str, token_ids: Sequence[int]) -> tuple[str | None, list[ToolCallDelta]]:
        message, self._announced = extract_named_tool_call_streaming(
            delta_text=text, function_name=self._name, function_name_returned=self._announced,
            tool_call_idx=None, tool_call_id_type="random", tokenizer=self._tokenizer,
        )
        return None, _deltas(message.tool_calls if message else [], single=False)

    def finish(self) -> list[ToolCallDelta]:
        return []


class _RequiredStream:
    def __init__(self, single: bool) -> None:
        self._single = single
        self._text = ""

    def feed(self, text: str, token_ids: Sequence[int]) -> tuple[str | None, list[ToolCallDelta]]:
        previous, self._text = self._text, self._text + text
        message, _ = extract_required_tool_call_streaming(
            previous_text=previous, current_text=self._text, tool_call_idx=None,
            tool_call_id_type="random",
        )
        return None, _deltas(message.tool_calls if message else [], self._single)

    def finish(self) -> list[ToolCallDelta]:
        return []


class _ParserStream:
    def __init__(self, parser: ToolParser, request: VLLMChatRequest, single: bool) -> None:
        self._parser = parser
        self._request = request
        self._single = single
        self._text = ""
        self._ids: list[int] = []

    def feed(self, text: str, token_ids: Sequence[int]) -> tuple[str | None, list[ToolCallDelta]]:
        previous_text, previous_ids = self._text, self._ids
        self._text, self._ids = previous_text + text, [*previous_ids, *token_ids]
        message = self._parser.extract_tool_calls_streaming(
            previous_text, self._text, text, previous_ids, self._ids, list(token_ids),
            self._request,
        )
        if message is None:
            return None, []
        return message.content, _deltas(message.tool_calls, self._single)

    def finish(self) -> list[ToolCallDelta]:
        remaining = self._parser.get_remaining_unstreamed_args()
        last = len(self._parser.prev_tool_call_arr) - 1
        if not remaining or (self._single and last > 0):
            return []
        return [ToolCallDelta(index=last, function={"arguments": remaining})]  # type: ignore[arg-type]
