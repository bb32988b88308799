"""Structured output and tool calls through the real server with the
`openai` client: JSON under a schema for every sample of every strategy,
votes over parsed JSON and over calls, and calls forced by name or
`required` (no parser needed) or chosen by the model (`auto`, read by
vLLM's hermes parser, which the session server runs with)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 12},
                   "age": {"type": "integer", "minimum": 0, "maximum": 120}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
ASK_PERSON = [{"role": "user", "content": "Describe a person as JSON with a name and an age."}]
AS_PERSON = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON,
                                                    "strict": True}}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 20}},
                   "required": ["city"], "additionalProperties": False},
}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "The time in a time zone.",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 20}},
                   "required": ["zone"], "additionalProperties": False},
}}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
# A model that has seen two calls in hermes' format writes a third.
FEW_SHOT_CALLS = [
    {"role": "system", "content": "You answer every question with a tool call."},
    {"role": "user", "content": "Weather in Rome?"},
    {"role": "assistant", "content":
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>'},
    {"role": "user", "content": "Weather in Oslo?"},
    {"role": "assistant", "content":
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'},
    {"role": "user", "content": "Weather in Paris?"},
]


def _is_person(text: str | None) -> bool:
    value = json.loads(text or "")
    return (set(value) == {"name", "age"} and isinstance(value["name"], str)
            and isinstance(value["age"], int) and 0 <= value["age"] <= 120)


def test_json_schema_output_under_none(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="smollm2", messages=ASK_PERSON, max_tokens=48, temperature=0.8, seed=2,
        response_format=AS_PERSON,  # type: ignore[arg-type]
    )
    assert response.choices[0].finish_reason == "stop"
    assert _is_person(response.choices[0].message.content)


def test_every_sample_of_a_vote_is_json_and_equal_objects_vote_together(
    client: openai.OpenAI,
) -> None:
    response = client.chat.completions.create(
        model="smollm2", messages=ASK_PERSON, max_tokens=48, temperature=0.8, seed=2,
        response_format=AS_PERSON,  # type: ignore[arg-type]
        extra_body={"strategy": {"name": "self_consistency", "n": 4}, "include_candidates": True},
    )
    ponder: dict[str, Any] = response.model_extra["ponder"]  # type: ignore[index]
    assert ponder["strategy"]["answer"] is None  # the default, which is json here
    candidates = ponder["candidates"]
    assert len(candidates) == 4 and all(_is_person(c["text"]) for c in candidates)
    # Votes are keyed by the parsed object, spelled one way.
    values = [json.loads(c["text"]) for c in candidates]
    assert sum(ponder["votes"].values()) == 4
    assert {json.dumps(json.loads(key), sort_keys=True) for key in ponder["votes"]} == {
        json.dumps(value, sort_keys=True) for value in values}
    assert ponder["votes"][ponder["answer"]] == max(ponder["votes"].values())
    content = response.choices[0].message.content
    assert _is_person(content) and json.loads(content or "") == json.loads(ponder["answer"])
    assert content in [c["text"] for c in candidates]  # as the chosen sample wrote it


def test_json_object_output_streams(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="smollm2", messages=ASK_PERSON, max_tokens=48, temperature=0, stream=True,
        response_format={"type": "json_object"},
    ))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert isinstance(json.loads(text), dict)


def test_a_bad_schema_is_a_400_naming_the_field(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json={
        "model": "smollm2", "messages": ASK_PERSON, "max_tokens": 4,
        "response_format": {"type": "json_schema", "json_schema": {
            "name": "bad", "schema": {"type": "object", "properties": {"a": {"type": "nonsense"}}}}},
    })
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "response_format" and "nonsense" in error["message"]
    assert ".cc" not in error["message"]  # no source locations of the grammar compiler


def test_a_named_function_is_always_called_well_formed(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="smollm2", messages=ASK_WEATHER, max_tokens=40, temperature=0.8, seed=4,
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    choice = response.choices[0]
    assert choice.finish_reason == "stop"  # OpenAI's for a named function
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function" and call.id
    assert call.function.name == "get_time"  # type: ignore[union-attr]
    assert set(json.loads(call.function.arguments)) == {"zone"}  # type: ignore[union-attr]


def test_required_calls_stream_as_tool_call_deltas(client: openai.OpenAI) -> None:
    args = dict(model="smollm2", messages=ASK_WEATHER, max_tokens=60, temperature=0,
                tools=[WEATHER, TIME], tool_choice="required")
    whole = client.chat.completions.create(**args)  # type: ignore[call-overload]
    assert whole.choices[0].finish_reason == "tool_calls"
    calls = whole.choices[0].message.tool_calls or []
    assert calls and all(c.function.name in ("get_weather", "get_time") for c in calls)
    chunks = list(client.chat.completions.create(**args, stream=True))  # type: ignore[call-overload]
    streamed: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = streamed.setdefault(delta.index, {"name": "", "arguments": ""})
            call["name"] += delta.function.name or "" if delta.function else ""
            call["arguments"] += delta.function.arguments or "" if delta.function else ""
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["tool_calls"]
    assert [(c["name"], json.loads(c["arguments"])) for c in streamed.values()] == [
        (c.function.name, json.loads(c.function.arguments)) for c in calls]  # type: ignore[union-attr]


def test_auto_calls_are_read_by_the_models_parser(client: openai.OpenAI) -> None:
    args = dict(model="smollm2", messages=FEW_SHOT_CALLS, max_tokens=40, temperature=0,
                tools=[WEATHER, TIME])
    response = client.chat.completions.create(**args)  # type: ignore[call-overload]
    choice = response.choices[0]
    assert choice.finish_reason == "tool_calls" and not choice.message.content
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    chunks = list(client.chat.completions.create(**args, stream=True))  # type: ignore[call-overload]
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert deltas[0].function.name == "get_weather" and deltas[0].id  # type: ignore[union-attr]
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert json.loads(arguments) == {"city": "Paris"}


def test_a_vote_over_tool_calls(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="smollm2", messages=FEW_SHOT_CALLS, max_tokens=40, temperature=0.7, seed=1,
        tools=[WEATHER, TIME],
        extra_body={"strategy": {"name": "self_consistency", "n": 4}, "include_candidates": True},
    )
    ponder: dict[str, Any] = response.model_extra["ponder"]  # type: ignore[index]
    winner = json.loads(ponder["answer"])
    assert winner == [{"name": "get_weather", "arguments": {"city": "Paris"}}]
    assert ponder["votes"][ponder["answer"]] >= 2
    [call] = response.choices[0].message.tool_calls or []
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    assert response.choices[0].finish_reason == "tool_calls"


def test_tool_choice_needs_the_tools_it_names(http: httpx.Client) -> None:
    body = {"model": "smollm2", "messages": ASK_WEATHER, "max_tokens": 4}
    refused = http.post("/v1/chat/completions", json={**body, "tool_choice": "required"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "tool_choice"
    unknown = http.post("/v1/chat/completions", json={
        **body, "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "x"}}})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "tool_choice"
    empty = http.post("/v1/chat/completions", json={**body, "tools": []})
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "tools"
