"""`none` and `cot` over a scripted generator."""

from __future__ import annotations

from ponder.core.generation import Prompt, Sampling
from ponder.strategies import cot, none
from ponder.strategies.base import Task
from ponder.strategies.prompts import COT_INSTRUCTION
from ponder.strategies.reasoning import NoReasoning

from .fakes import RecordingEmitter, ScriptedGenerator, execute

MESSAGES = ({"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 6 - 18?"})


def _task(max_tokens: int | None = None) -> Task:
    return Task(Prompt(messages=MESSAGES), Sampling(max_tokens=max_tokens), NoReasoning())


async def test_none_sends_the_messages_as_they_are() -> None:
    gen = ScriptedGenerator.of("It is -12.")
    result = await execute(_task(), gen, none.Config())
    prompt, n, _ = gen.calls[0]
    assert prompt.messages == MESSAGES and n == 1
    assert result.content == "It is -12."
    assert result.reasoning is None
    assert result.usage.completion_tokens == 5  # "It", " is", " -", "12", "."
    assert result.usage.reasoning_tokens == 0
    assert result.usage.prompt_tokens == gen.prompt_tokens


async def test_cot_adds_the_instruction_to_the_last_user_message() -> None:
    gen = ScriptedGenerator.of("6 minus 18 is -12.\nAnswer: -12")
    result = await execute(_task(), gen, cot.Config())
    prompt = gen.calls[0][0]
    assert prompt.messages is not None
    assert prompt.messages[0] == MESSAGES[0]
    assert prompt.messages[1]["content"].endswith(COT_INSTRUCTION)
    assert result.content == "-12"
    assert result.reasoning == "6 minus 18 is -12.\n"
    # Tokens: "6", " minus", " 18", " is", " -", "12", ".", "\n", "Answer",
    # ":", " -", "12". The reasoning takes the tokens it needs to cover its
    # text: the first eight.
    assert result.usage.reasoning_tokens == 8
    assert result.usage.completion_tokens == 12


async def test_cot_streams_reasoning_then_content() -> None:
    gen = ScriptedGenerator.of("First, 6 - 18 = -12.\nAnswer: -12")
    emitter = RecordingEmitter()
    result = await execute(_task(), gen, cot.Config(), emitter)
    kinds = [kind for kind, _ in emitter.events]
    assert kinds.index("content") > max(i for i, k in enumerate(kinds) if k == "reasoning")
    assert emitter.text("reasoning") == result.reasoning
    assert emitter.text("content") == result.content == "-12"
    assert gen.closed_streams == 1


async def test_token_cap_reports_length() -> None:
    gen = ScriptedGenerator.of("one two three four five")
    result = await execute(_task(max_tokens=3), gen, none.Config())
    assert result.finish_reason == "length"
    assert result.content == "one two three"
    assert result.usage.completion_tokens == 3
