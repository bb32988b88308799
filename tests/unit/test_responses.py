"""POST /v1/responses through the real app over ASGI, read by the official
openai client (its parser and stream accumulator are strict about the
Responses API's shapes and event order), with a scripted generator."""

from __future__ import annotations

import httpx
import openai
import pytest

from ..asgi import asgi_app
from ..fakes import ScriptedGenerator

QUESTION = "What is 2 + 2?"


def _client(generator: ScriptedGenerator, **settings: object) -> openai.AsyncOpenAI:
    app = asgi_app(generator, **settings)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ponder")
    return openai.AsyncOpenAI(base_url="http://ponder/v1", api_key="-", http_client=http,
                              max_retries=0)


async def test_a_response_has_the_answer_as_a_message_and_counts_usage() -> None:
    client = _client(ScriptedGenerator.of("The answer is 4."))
    response = await client.responses.create(
        model="smollm2", input=QUESTION, instructions="Be brief.", max_output_tokens=32,
        store=False,
    )
    assert response.status == "completed" and response.object == "response"
    assert response.output_text == "The answer is 4."
    assert [item.type for item in response.output] == ["message"]
    assert response.usage.output_tokens == 5 and response.usage.input_tokens == 7
    assert response.usage.total_tokens == 12
    assert response.instructions == "Be brief." and response.max_output_tokens == 32


async def test_effort_picks_the_preset_and_usage_counts_every_sample() -> None:
    client = _client(ScriptedGenerator.of("4", "4", "5"),
                     effort=["medium=self_consistency?n=4&prompt=direct"])
    response = await client.responses.create(
        model="smollm2", input=[{"role": "user", "content": QUESTION}],
        reasoning={"effort": "medium", "summary": "auto"}, temperature=0.7,
    )
    ponder = response.model_extra["ponder"]
    assert ponder["effort"] == "medium" and ponder["strategy"]["name"] == "self_consistency"
    assert ponder["samples"] == 4 and response.output_text == "4"
    assert response.usage.output_tokens == 4  # one token a sample, every sample counted
    summary = response.output[-1]
    assert summary.type == "reasoning" and "self_consistency drew 4 samples" in (
        summary.summary[0].text) and "chose 4" in summary.summary[0].text


async def test_a_streamed_response_sends_typed_events_in_order() -> None:
    client = _client(ScriptedGenerator.of("The answer is 4."))
    async with client.responses.stream(model="smollm2", input=QUESTION) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[2:4] == ["response.output_item.added", "response.content_part.added"]
    assert "response.output_text.delta" in kinds
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert final.output_text == "The answer is 4." and final.usage.output_tokens == 5


async def test_a_visible_trace_streams_as_a_reasoning_item_before_the_message() -> None:
    client = _client(ScriptedGenerator.of("4", "4", "5"))
    async with client.responses.stream(
        model="smollm2", input=QUESTION, temperature=0.7,
        extra_body={"strategy": {"name": "self_consistency", "n": 3}},
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output_text == "4"
    assert "Sampling 3 answers to vote on." in final.output[0].content[0].text
    assert kinds.index("response.reasoning_text.done") < kinds.index(
        "response.output_text.delta")


async def test_a_hidden_trace_leaves_only_the_message_and_still_counts() -> None:
    client = _client(ScriptedGenerator.of("4", "4", "5"))
    response = await client.responses.create(
        model="smollm2", input=QUESTION, temperature=0.7,
        extra_body={"strategy": {"name": "self_consistency", "n": 3},
                    "reasoning_trace": "hidden"},
    )
    assert [item.type for item in response.output] == ["message"]
    assert response.usage.output_tokens == 3


async def test_a_cut_off_answer_is_an_incomplete_response() -> None:
    client = _client(ScriptedGenerator.of("one two three four five six"))
    response = await client.responses.create(model="smollm2", input=QUESTION,
                                             max_output_tokens=3)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize(("fields", "param", "says"), [
    ({"store": True}, "store", "stores no responses"),
    ({"previous_response_id": "resp_1"}, "previous_response_id", "send the whole conversation"),
    ({"tools": [{"type": "function", "name": "f"}]}, "tools", "/v1/chat/completions"),
])
async def test_what_needs_storage_or_tools_is_a_clear_400(
    fields: dict[str, object], param: str, says: str
) -> None:
    app = asgi_app(ScriptedGenerator.of("4"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ponder") as http:
        reply = await http.post("/v1/responses",
                                json={"model": "smollm2", "input": QUESTION, **fields})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == param and says in error["message"]
