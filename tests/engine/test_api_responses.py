"""The reasoning knobs through the real server on the embedded model: the
Responses API read by the official openai client, whole and streamed, and
`reasoning_effort` from the plain openai client and LangChain's ChatOpenAI,
each level its own strategy and cost."""

from __future__ import annotations

import httpx
import openai
from langchain_openai import ChatOpenAI

from .conftest import Server

QUESTION = "What is 6 + 7? Answer with the number."


def test_responses_create_answers_with_a_message_and_exact_usage(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="smollm2", input=QUESTION, instructions="You are good at sums.",
        max_output_tokens=48, temperature=0, store=False,
    )
    assert response.status in ("completed", "incomplete")
    assert response.output[-1].type == "message" and response.output_text.strip()
    usage = response.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert 0 < usage.output_tokens <= 48
    assert response.model_extra["ponder"]["strategy"]["name"] == "none"


def test_responses_stream_sends_the_answer_in_typed_events(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    with client.responses.stream(
        model="smollm2", input=QUESTION, max_output_tokens=200, temperature=0.7,
        reasoning={"effort": "medium"}, extra_body={"seed": 3},
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text
    ponder = final.model_extra["ponder"]
    assert ponder["effort"] == "medium" and ponder["strategy"]["name"] == "best_of_n"
    assert ponder["samples"] == 4
    # Every sample's tokens are counted, not only the chosen one's.
    chosen = http.post("/tokenize", json={"prompt": final.output_text,
                                          "add_special_tokens": False}).json()
    assert final.usage.output_tokens > chosen["count"]


def test_effort_levels_buy_different_strategies_and_compute(client: openai.OpenAI) -> None:
    spent = {}
    for level in ("low", "medium", "high"):
        reply = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": QUESTION}],
            reasoning_effort=level, max_tokens=32, temperature=0.7, seed=0,
        )
        ponder = reply.model_extra["ponder"]
        assert ponder["effort"] == level
        spent[level] = (ponder["strategy"]["name"], ponder["samples"],
                        reply.usage.completion_tokens)
    assert [spent[level][:2] for level in ("low", "medium")] == [("none", 1), ("best_of_n", 4)]
    assert spent["high"][0] == "auto" and spent["high"][1] >= 4  # its probe, then what it needs
    assert spent["low"][2] < spent["medium"][2] and spent["low"][2] < spent["high"][2]


def test_langchain_reasoning_effort_works_unchanged(server: Server) -> None:
    spent = {}
    for level in ("low", "medium"):
        chat = ChatOpenAI(
            model="smollm2", base_url=f"{server.base_url}/v1", api_key=server.api_key,  # type: ignore[arg-type]
            max_retries=0, temperature=0.7, max_tokens=32, reasoning_effort=level,  # type: ignore[call-arg]
            seed=1,
        )
        message = chat.invoke(QUESTION)
        assert isinstance(message.content, str) and message.content.strip()
        assert message.usage_metadata is not None
        spent[level] = message.usage_metadata["output_tokens"]
    # medium is the best of four samples, every one of them counted.
    assert spent["medium"] > spent["low"]
