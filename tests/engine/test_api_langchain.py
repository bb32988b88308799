"""LangChain's ChatOpenAI pointed at ponder unchanged: structured output into
a pydantic model, and tool calls, also under a voting strategy."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field

from .conftest import Server


class Person(BaseModel):
    """A person."""

    name: str = Field(max_length=12)
    age: int = Field(ge=0, le=120)


class GetWeather(BaseModel):
    """The current weather in a city."""

    city: str = Field(max_length=20)


def _chat(server: Server, **options: object) -> ChatOpenAI:
    """Greedy unless ``options`` say otherwise."""
    return ChatOpenAI(
        model="smollm2", base_url=f"{server.base_url}/v1", api_key=server.api_key,  # type: ignore[arg-type]
        max_retries=0, **{"temperature": 0, "max_tokens": 48, **options},  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("strategy", [None, {"name": "self_consistency", "n": 3}])
def test_with_structured_output_returns_a_model_instance(
    server: Server, strategy: dict[str, object] | None
) -> None:
    options = {} if strategy is None else {
        "temperature": 0.8, "extra_body": {"strategy": strategy}}
    chat = _chat(server, **options).with_structured_output(Person)
    person = chat.invoke("Describe a person with a name and an age.")
    assert isinstance(person, Person)


def test_bind_tools_gets_a_tool_call(server: Server) -> None:
    chat = _chat(server).bind_tools([GetWeather], tool_choice="GetWeather")
    reply = chat.invoke("What is the weather in Paris?")
    assert isinstance(reply, AIMessage)
    [call] = reply.tool_calls
    assert call["name"] == "GetWeather" and isinstance(call["args"]["city"], str)
    forced = _chat(server).bind_tools([GetWeather], tool_choice="any")  # OpenAI's "required"
    assert [c["name"] for c in forced.invoke("What is the weather in Paris?").tool_calls] == [
        "GetWeather"]


def test_bind_tools_with_the_models_own_choice(server: Server) -> None:
    """tool_choice auto, the server reading the model's calls with hermes."""
    history = [SystemMessage("You answer every question with a tool call.")]
    for city in ("Rome", "Oslo"):
        history += [HumanMessage(f"Weather in {city}?"), AIMessage(
            f'<tool_call>\n{{"name": "GetWeather", "arguments": {{"city": "{city}"}}}}\n</tool_call>'
        )]
    reply = _chat(server).bind_tools([GetWeather]).invoke([*history, HumanMessage("Weather in Paris?")])
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("GetWeather", {"city": "Paris"})]
