"""Votes over structured answers: JSON documents and tool calls are one vote
when they mean the same value, whatever their spelling; self-consistency
over JSON output and over tool calls, on a scripted generator."""

from __future__ import annotations

import pytest

from ponder.core.answers import answers_equivalent
from ponder.core.generation import JsonOutput, Prompt, RequestRejected, Sampling
from ponder.strategies import self_consistency
from ponder.strategies.answers import extract_answer
from ponder.strategies.base import Task
from ponder.strategies.reasoning import NoReasoning
from ponder.strategies.tool_calls import (
    NamedCallReader,
    ReadCalls,
    RequiredCallsReader,
    ToolCall,
    ToolCallReader,
    calls_answer,
)
from ponder.strategies.voting import VoteBook

from ..fakes import ScriptedGenerator, execute

QUESTION = ({"role": "user", "content": "Who is it?"},)


def _classes(answers: list[str | None], answer_format: str) -> list[tuple[str, list[int]]]:
    book = VoteBook(answer_format)  # type: ignore[arg-type]
    for index, answer in enumerate(answers):
        book.add(index, answer)
    return [(c.answer, c.members) for c in book.classes]


@pytest.mark.parametrize(("a", "b", "same"), [
    ('{"name": "Ada", "age": 36}', '{"age":36,"name":"Ada"}', True),
    ('{"age": 36}', '{"age": 36.0}', True),  # JSON has one number type
    ('{\n  "tags": ["a", "b"]\n}', '{"tags":["a","b"]}', True),
    ('```json\n{"a": 1}\n```', '{"a": 1}', True),
    ('{"tags": ["a", "b"]}', '{"tags": ["b", "a"]}', False),  # arrays keep their order
    ('{"ok": true}', '{"ok": 1}', False),  # true is not 1
    ('{"a": 1}', '{"a": "1"}', False),
    ('{"a": {"b": null}}', '{"a": {}}', False),
])
def test_json_answers_compare_as_values(a: str, b: str, same: bool) -> None:
    key_a, key_b = extract_answer(a, "json"), extract_answer(b, "json")
    assert key_a is not None and key_b is not None
    assert answers_equivalent(key_a, key_b, "json") is same
    assert (len(_classes([key_a, key_b], "json")) == 1) is same


@pytest.mark.parametrize("text", ["not json", '{"a": 1', "NaN", '{"a": NaN}', "[" * 100_000, ""])
def test_what_is_not_json_has_no_answer(text: str) -> None:
    assert extract_answer(text, "json") is None


def test_tool_calls_compare_by_name_and_parsed_arguments() -> None:
    paris = calls_answer([ToolCall("weather", '{"city": "Paris", "unit": "C"}')])
    same = calls_answer([ToolCall("weather", '{\n "unit":"C",\n "city":"Paris"}')])
    other_city = calls_answer([ToolCall("weather", '{"city": "Rome", "unit": "C"}')])
    other_tool = calls_answer([ToolCall("time", '{"city": "Paris", "unit": "C"}')])
    two_calls = calls_answer([ToolCall("weather", '{"city": "Paris", "unit": "C"}'),
                              ToolCall("time", '{"zone": "CET"}')])
    assert paris == same
    assert _classes([paris, other_city, same, other_tool, two_calls, paris], "tool_calls") == [
        (paris, [0, 2, 5]), (other_city, [1]), (other_tool, [3]), (two_calls, [4]),
    ]


def test_arguments_that_are_not_json_still_compare_exactly() -> None:
    assert calls_answer([ToolCall("f", "{oops")]) == calls_answer([ToolCall("f", "{oops")])
    assert calls_answer([ToolCall("f", "{oops")]) != calls_answer([ToolCall("f", "{oops!")])


def test_readers_of_forced_calls() -> None:
    named = NamedCallReader("weather").read('{"city": "Paris"}')
    assert named.calls == [ToolCall("weather", '{"city": "Paris"}')] and named.content is None
    assert NamedCallReader("weather").read("  ").calls == []
    text = '[{"name": "weather", "parameters": {"city": "Paris"}}, {"name": "time", "parameters": {}}]'
    required = RequiredCallsReader().read(text)
    assert [c.name for c in required.calls] == ["weather", "time"]
    assert required.calls[0].arguments == '{"city": "Paris"}'
    assert [c.name for c in RequiredCallsReader(single=True).read(text).calls] == ["weather"]
    assert RequiredCallsReader().read("[{oops").content == "[{oops"


def _task(sampling: Sampling, tools: ToolCallReader | None = None) -> Task:
    return Task(Prompt(messages=QUESTION), sampling, NoReasoning(), tools=tools)


async def test_self_consistency_votes_over_json_and_returns_the_chosen_sample() -> None:
    texts = ['{"name": "Ada", "age": 36}', '{"age":36,"name":"Ada"}', '{"name": "Bob", "age": 7}',
             "{not json"]
    gen = ScriptedGenerator.of(*texts)
    gen.logprobs = {texts[0]: -9.0, texts[1]: -1.0}
    sampling = Sampling(max_tokens=50, temperature=0.7, json_output=JsonOutput('{"type":"object"}'))
    result = await execute(_task(sampling), gen, self_consistency.Config(n=4))
    assert result.votes == {'{"age":36,"name":"Ada"}': 2, '{"age":7,"name":"Bob"}': 1}
    assert result.answer == '{"age":36,"name":"Ada"}'
    # The content is the winning class's most confident sample, as it wrote it.
    assert result.content == texts[1] and result.reasoning is None
    # JSON constrains every sample, so the CoT instruction is not sent.
    assert gen.calls[0][0].messages == QUESTION
    assert gen.calls[0][2].json_output == sampling.json_output
    assert result.usage.reasoning_tokens == 0


async def test_a_cot_prompt_asked_for_by_name_cannot_be_json() -> None:
    sampling = Sampling(max_tokens=50, temperature=0.7, json_output=JsonOutput())
    with pytest.raises(RequestRejected) as refused:
        await execute(_task(sampling), ScriptedGenerator.of("{}"),
                      self_consistency.Config(n=2, prompt="cot"))
    assert refused.value.param == "strategy.prompt"


async def test_self_consistency_votes_over_tool_calls() -> None:
    calls = ['[{"name": "weather", "parameters": {"city": "Paris"}}]',
             '[{"parameters": {"city": "Paris"}, "name": "weather"}]',
             '[{"name": "weather", "parameters": {"city": "Rome"}}]']
    gen = ScriptedGenerator.of(*calls)
    sampling = Sampling(max_tokens=50, temperature=0.7, json_output=JsonOutput("{}", "tools"))
    result = await execute(_task(sampling, RequiredCallsReader()), gen,
                           self_consistency.Config(n=3))
    paris = calls_answer([ToolCall("weather", '{"city": "Paris"}')])
    assert result.votes == {paris: 2, calls_answer([ToolCall("weather", '{"city": "Rome"}')]): 1}
    assert result.answer == paris and result.content == calls[0]


async def test_samples_that_call_nothing_vote_with_their_text() -> None:
    """With `auto`, answering in words competes with calling a tool."""

    class Tagged:
        """A model's own call format: a line that starts with CALL."""

        def read(self, text: str) -> ReadCalls:
            if text.startswith("CALL "):
                return NamedCallReader("weather").read(text.removeprefix("CALL "))
            return ReadCalls(content=text)

    texts = ['CALL {"city": "Paris"}', "It is sunny.", "It is sunny.", 'CALL {"city":"Paris"}',
             "It is  sunny."]
    gen = ScriptedGenerator.of(*texts)
    result = await execute(_task(Sampling(max_tokens=50, temperature=0.7), Tagged()), gen,
                           self_consistency.Config(n=5))
    # A model calls tools in its own format: no CoT instruction unless asked.
    assert gen.calls[0][0].messages == QUESTION
    assert result.votes == {"it is sunny": 3,
                            calls_answer([ToolCall("weather", '{"city": "Paris"}')]): 2}
    assert result.content == "It is sunny."


async def test_voting_over_tool_calls_needs_tools() -> None:
    with pytest.raises(RequestRejected) as refused:
        await execute(_task(Sampling(max_tokens=50, temperature=0.7)), ScriptedGenerator.of("x"),
                      self_consistency.Config(n=2, answer="tool_calls"))
    assert refused.value.param == "strategy.answer"
