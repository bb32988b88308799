"""`none` and `cot` over a scripted generator."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ponder.core.generation import JsonOutput, Prompt, RequestRejected, Sampling
from ponder.strategies import STRATEGIES, cot, none
from ponder.strategies.base import Task
from ponder.strategies.prompts import COT_INSTRUCTION
from ponder.strategies.reasoning import NoReasoning

from ..fakes import RecordingEmitter, ScriptedGenerator, execute

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


def _with_logprobs(task: Task) -> Task:
    return replace(task, sampling=replace(task.sampling, logprobs=True))


async def test_cot_returns_the_logprobs_of_its_answer_alone() -> None:
    """The trace is not content: as vLLM does for reasoning models, the
    log-probabilities returned are those of the answer's tokens."""
    text = "First, 6 - 18 = -12.\nAnswer: -12"
    gen = ScriptedGenerator.of(text)
    gen.logprobs = {text: -6.0}
    result = await execute(_with_logprobs(_task()), gen, cot.Config())
    assert result.content == "-12"
    assert result.logprobs is not None
    assert [t.token for t in result.logprobs] == [" -", "12"]  # " -" reaches into "-12"
    assert all(t.logprob == -6.0 / 14 for t in result.logprobs)  # -6 over 14 tokens


async def test_streamed_content_carries_the_same_tokens() -> None:
    text = "First, 6 - 18 = -12.\nAnswer: -12"
    gen = ScriptedGenerator.of(text)
    gen.logprobs = {text: -6.0}
    emitter = RecordingEmitter()
    result = await execute(_with_logprobs(_task()), gen, cot.Config(), emitter)
    streamed = [t for _, logprobs in emitter.content_tokens for t in logprobs or ()]
    assert streamed == result.logprobs
    # The last two of the sample's 14 tokens, " -" and "12".
    assert [i for ids, _ in emitter.content_tokens for i in ids] == [12, 13]


async def test_no_logprobs_unless_asked() -> None:
    gen = ScriptedGenerator.of("It is -12.")
    gen.logprobs = {"It is -12.": -1.0}
    emitter = RecordingEmitter()
    result = await execute(_task(), gen, none.Config(), emitter)
    assert result.logprobs is None and emitter.content_tokens[0][1] is None


async def test_n_choices_are_the_children_of_one_engine_request() -> None:
    gen = ScriptedGenerator.of("one", "two words", "three more words")
    results = await STRATEGIES["none"].execute_choices(
        replace(_task(), sampling=Sampling(max_tokens=None, temperature=0.8)), gen, none.Config(), 3
    )
    assert [n for _, n, _ in gen.calls] == [3]
    assert [r.content for r in results] == ["one", "two words", "three more words"]
    # The engine read the prompt once: the first choice carries it.
    assert [r.usage.prompt_tokens for r in results] == [gen.prompt_tokens, 0, 0]
    assert [r.usage.completion_tokens for r in results] == [1, 2, 3]


async def test_n_streamed_choices_each_reach_their_own_client_choice() -> None:
    gen = ScriptedGenerator.of("First.\nAnswer: 1", "Then.\nAnswer: 2")
    emitters = [RecordingEmitter(), RecordingEmitter()]
    results = await STRATEGIES["cot"].execute_choices(_task(), gen, cot.Config(), 2, emitters)
    assert [e.text("content") for e in emitters] == ["1", "2"] == [r.content for r in results]
    assert [e.text("reasoning") for e in emitters] == ["First.\n", "Then.\n"]
    assert gen.closed_streams == 1


async def test_cot_cannot_answer_in_constrained_json() -> None:
    task = replace(_task(), sampling=Sampling(max_tokens=None, json_output=JsonOutput()))
    with pytest.raises(RequestRejected) as refused:
        await execute(task, ScriptedGenerator.of("{}"), cot.Config())
    assert refused.value.param == "strategy"
