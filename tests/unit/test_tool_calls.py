"""Tool calling for one request (server/tool_calls.py) over vLLM's own
parsers and schema builder, with the served model's real tokenizer: what a
forced call is generated under, how calls are read whole and as they
stream, and the finish reason OpenAI gives them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from transformers import AutoTokenizer

from ponder.server.embedded_model import embedded_model_dir
from ponder.server.errors import InvalidRequest
from ponder.server.protocol.chat import ChatCompletionRequest, ToolCallDelta
from ponder.server.tool_calls import ToolCallStream, ToolParsers

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]},
}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"zone": {"type": "string"}}}}}
HERMES_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(embedded_model_dir())


def _request(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({
        "model": "smollm2", "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [WEATHER, TIME], **fields,
    })


def _streamed(stream: ToolCallStream, pieces: list[str]) -> tuple[str, list[ToolCallDelta]]:
    content, deltas = "", []
    for piece in pieces:
        text, calls = stream.feed(piece, ())
        content += text or ""
        deltas += calls
    return content, deltas + stream.finish()


def _calls_of(deltas: list[ToolCallDelta]) -> dict[int, dict[str, str]]:
    """OpenAI's deltas put back together, as a client does."""
    calls: dict[int, dict[str, str]] = {}
    for delta in deltas:
        call = calls.setdefault(delta.index, {"name": "", "arguments": "", "id": ""})
        call["id"] += delta.id or ""
        if delta.function is not None:
            call["name"] += delta.function.name or ""
            call["arguments"] += delta.function.arguments or ""
    return calls


def test_a_named_function_is_generated_under_its_parameters(tokenizer: Any) -> None:
    use = ToolParsers(None, tokenizer).for_request(
        _request(tool_choice={"type": "function", "function": {"name": "get_weather"}}))
    assert use is not None and use.json_output is not None
    assert json.loads(use.json_output.schema or "") == WEATHER["function"]["parameters"]
    assert use.json_output.field == "tools"
    content, calls, finish = use.message('{"city": "Paris"}', "stop")
    assert content is None and finish == "stop"  # OpenAI's finish reason for a named call
    assert calls is not None and calls[0].function.name == "get_weather"
    assert calls[0].id.startswith("chatcmpl-tool-")
    _, deltas = _streamed(use.new_stream(), ['{"ci', 'ty": "Par', 'is"}'])
    assert _calls_of(deltas) == {0: {"name": "get_weather", "arguments": '{"city": "Paris"}',
                                     "id": deltas[0].id}}
    assert deltas[0].type == "function" and all(d.id is None for d in deltas[1:])


def test_required_calls_are_an_array_of_any_tool(tokenizer: Any) -> None:
    use = ToolParsers(None, tokenizer).for_request(_request(tool_choice="required"))
    assert use is not None and use.json_output is not None
    schema = json.loads(use.json_output.schema or "")
    assert schema["type"] == "array" and schema["minItems"] == 1 and "maxItems" not in schema
    text = ('[{"name": "get_weather", "parameters": {"city": "Paris"}}, '
            '{"name": "get_time", "parameters": {"zone": "CET"}}]')
    _, calls, finish = use.message(text, "stop")
    assert [c.function.name for c in calls or ()] == ["get_weather", "get_time"]
    assert finish == "tool_calls"
    _, deltas = _streamed(use.new_stream(), [text[:30], text[30:70], text[70:]])
    streamed = _calls_of(deltas)
    assert [c["name"] for c in streamed.values()] == ["get_weather", "get_time"]
    assert [json.loads(c["arguments"]) for c in streamed.values()] == [{"city": "Paris"},
                                                                        {"zone": "CET"}]
    single = ToolParsers(None, tokenizer).for_request(
        _request(tool_choice="required", parallel_tool_calls=False))
    assert single is not None and single.json_output is not None
    assert json.loads(single.json_output.schema or "")["maxItems"] == 1


def test_auto_needs_a_parser(tokenizer: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        ToolParsers(None, tokenizer).for_request(_request())  # auto, by default with tools
    assert refused.value.param == "tool_choice" and "--tool-call-parser" in refused.value.message
    assert ToolParsers(None, tokenizer).for_request(_request(tool_choice="none")) is None


def test_auto_reads_the_models_own_format_with_vllms_parser(tokenizer: Any) -> None:
    use = ToolParsers("hermes", tokenizer).for_request(_request(tool_choice="auto"))
    assert use is not None and use.json_output is None  # the model writes freely
    assert use.keeps_special_tokens  # hermes reads markup some tokenizers call special
    content, calls, finish = use.message("Let me look.\n" + HERMES_CALL, "stop")
    assert content == "Let me look.\n" and finish == "tool_calls"
    assert calls is not None and json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert use.message("It is sunny.", "stop") == ("It is sunny.", None, "stop")
    text = "Let me look.\n" + HERMES_CALL
    pieces = [text[i:i + 7] for i in range(0, len(text), 7)]
    streamed_content, deltas = _streamed(use.new_stream(), pieces)
    assert streamed_content == "Let me look.\n"
    [call] = _calls_of(deltas).values()
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}


def test_one_call_when_parallel_calls_are_off(tokenizer: Any) -> None:
    use = ToolParsers("hermes", tokenizer).for_request(
        _request(tool_choice="auto", parallel_tool_calls=False))
    assert use is not None
    two = HERMES_CALL + '\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
    _, calls, _ = use.message(two, "stop")
    assert [c.function.name for c in calls or ()] == ["get_weather"]
    _, deltas = _streamed(use.new_stream(), [two[:40], two[40:]])
    assert set(_calls_of(deltas)) == {0}


def test_an_unknown_parser_stops_the_server_saying_what_would_do() -> None:
    with pytest.raises(ValueError, match="hermes"):
        ToolParsers("no-such-parser")
