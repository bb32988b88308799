"""Self-consistency over a scripted generator: votes, equivalence, ties,
early stopping, prompts, streaming."""

from __future__ import annotations

import pytest

from ponder.core.generation import Prompt, RequestRejected, Sampling
from ponder.strategies import self_consistency
from ponder.strategies.base import Task
from ponder.strategies.prompts import COT_INSTRUCTION
from ponder.strategies.reasoning import NoReasoning
from ponder.strategies.voting import decided, leader_confidence

from ..fakes import RecordingEmitter, ScriptedGenerator, execute, tokenize

QUESTION = ({"role": "user", "content": "What is 2 + 3?"},)
QUESTION_PROMPT = Prompt(messages=QUESTION)


def _task(temperature: float = 0.7) -> Task:
    return Task(Prompt(messages=QUESTION), Sampling(max_tokens=200, temperature=temperature),
                NoReasoning())


def _config(**fields: object) -> self_consistency.Config:
    return self_consistency.Config(**fields)  # type: ignore[arg-type]


async def test_majority_answer_wins_and_every_token_counts() -> None:
    texts = ["2 plus 3 is 5.\nAnswer: 5", "Answer: 5", "I think 7.\nAnswer: 7", "no idea"]
    gen = ScriptedGenerator.of(*texts)
    result = await execute(_task(), gen, _config(n=4))
    assert len(gen.calls) == 1 and gen.calls[0][1] == 4  # one fanned-out engine request
    assert result.content == result.answer == "5"
    assert result.votes == {"5": 2, "7": 1}  # "no idea" has no answer and does not vote
    assert result.usage.completion_tokens == sum(len(tokenize(t)) for t in texts)
    assert result.usage.prompt_tokens == gen.prompt_tokens
    assert [c.answer for c in result.candidates] == ["5", "5", "7", None]
    assert result.reasoning == "2 plus 3 is 5.\n"  # the trace of a sample that said 5


async def test_equivalent_answers_share_one_vote() -> None:
    gen = ScriptedGenerator.of("Answer: 1/2", "Answer: 0.5", "Answer: 2", "Answer: \\frac{1}{2}")
    result = await execute(_task(), gen, _config(n=4))
    assert result.votes == {"1/2": 3, "2": 1}
    assert result.answer == "1/2"


async def test_a_tie_goes_to_the_most_confident_sample() -> None:
    gen = ScriptedGenerator.of("Answer: 3", "Answer: 4")
    gen.logprobs = {"Answer: 3": -4.0, "Answer: 4": -1.0}
    result = await execute(_task(), gen, _config(n=2))
    assert result.votes == {"3": 1, "4": 1}
    assert result.answer == "4"


async def test_without_logprobs_a_tie_goes_to_the_answer_seen_first() -> None:
    gen = ScriptedGenerator.of("Answer: 3", "Answer: 4")
    result = await execute(_task(), gen, _config(n=2))
    assert result.answer == "3"


async def test_early_stop_aborts_once_the_leader_cannot_be_caught() -> None:
    long = "Let me think about this for a long while before answering. " * 4 + "Answer: 6"
    gen = ScriptedGenerator.of("Answer: 5", "Answer: 5", "Answer: 5", long, long)
    result = await execute(_task(), gen, _config(n=5, early_stop=True))
    assert result.stopped_early
    assert gen.closed_streams == 1
    assert result.answer == "5" and result.votes == {"5": 3}
    finish = [c.finish_reason for c in result.candidates]
    assert finish == ["stop", "stop", "stop", "abort", "abort"]
    # Tokens the aborted samples made before the stop still count.
    partial = sum(c.tokens for c in result.candidates[3:])
    assert partial > 0
    assert result.usage.completion_tokens == 3 * len(tokenize("Answer: 5")) + partial
    assert result.tokens_saved_estimate >= 0


async def test_no_early_stop_while_the_vote_is_open() -> None:
    gen = ScriptedGenerator.of("Answer: 5", "Answer: 6", "Answer: 5", "Answer: 6")
    result = await execute(_task(), gen, _config(n=4, early_stop=True))
    assert not result.stopped_early
    assert result.votes == {"5": 2, "6": 2}


async def test_confidence_rule_stops_earlier() -> None:
    # 3 of 3 agree with 3 still running: not decided (3 > 0 + 3 is false),
    # but P(leader ahead) = 15/16 >= 0.9.
    slow = "a b c d e f g h i j k l m n o p q r s t. Answer: 8"
    gen = ScriptedGenerator.of("Answer: 5", "Answer: 5", "Answer: 5", slow, slow, slow)
    plain = await execute(_task(), gen, _config(n=6, early_stop=True))
    confident = await execute(
        _task(), gen, _config(n=6, early_stop=True, confidence=0.9)
    )
    assert not plain.stopped_early
    assert confident.stopped_early and confident.votes == {"5": 3}


def test_early_stop_arithmetic() -> None:
    assert decided(5, 2, 2)
    assert not decided(5, 3, 2)  # the runner-up could still tie
    assert not decided(0, 0, 1)
    assert leader_confidence(0, 0) == 0.5
    assert leader_confidence(3, 0) == 15 / 16
    assert leader_confidence(2, 2) == 0.5
    assert leader_confidence(6, 1) > leader_confidence(5, 1)


@pytest.mark.parametrize(("style", "has_instruction"), [("cot", True), ("direct", False)])
async def test_both_prompts(style: str, has_instruction: bool) -> None:
    gen = ScriptedGenerator.of("5")
    result = await execute(_task(), gen, _config(n=2, prompt=style))
    sent = gen.calls[0][0].messages
    assert sent is not None
    assert sent[-1]["content"].endswith(COT_INSTRUCTION) is has_instruction
    assert result.answer == "5"
    if style == "direct":
        # Only the answer is shown, so the whole sample was reasoning.
        assert result.usage.reasoning_tokens == result.usage.completion_tokens


async def test_streaming_sends_progress_before_the_answer() -> None:
    gen = ScriptedGenerator.of("Answer: 5", "Answer: 5", "Answer: 6")
    emitter = RecordingEmitter()
    result = await execute(_task(), gen, _config(n=3), emitter)
    kinds = [kind for kind, _ in emitter.events]
    assert kinds[0] == "progress"
    assert kinds.count("progress") == 4  # the plan, then one line per sample
    assert kinds[-1] == "content"
    assert emitter.text("content") == result.content == "5"
    assert "Votes: 5: 2, 6: 1." in emitter.text("progress")


async def test_temperature_zero_is_refused() -> None:
    with pytest.raises(RequestRejected) as caught:
        await execute(_task(temperature=0), ScriptedGenerator.of("1"), _config(n=4))
    assert caught.value.param == "temperature"


async def test_logprobs_are_those_of_the_returned_answer() -> None:
    """The content is the extracted answer: its log-probabilities are those
    of the chosen sample's tokens that spell it, not of its trace."""
    texts = ["2 plus 3 is 5.\nAnswer: 5", "Answer: 5", "So 1,000.\nAnswer: 1,000"]
    gen = ScriptedGenerator.of(*texts)
    gen.logprobs = {texts[0]: -1.0, texts[1]: -4.0, texts[2]: -2.0}
    asked = Task(QUESTION_PROMPT, Sampling(max_tokens=200, temperature=0.7, logprobs=True),
                 NoReasoning())
    result = await execute(asked, gen, _config(n=2))
    assert result.content == "5" and result.logprobs is not None
    assert [t.token for t in result.logprobs] == [" 5"]  # the last "5" of the chosen sample
    # An answer the extractor rewrote ("1,000" -> "1000") is not in the text:
    # its log-probabilities are those of the text it came from.
    gen = ScriptedGenerator.of(texts[2])
    gen.logprobs = {texts[2]: -2.0}
    rewritten = await execute(asked, gen, _config(n=1))
    assert rewritten.content == "1000"
    assert rewritten.logprobs is not None
    assert "".join(t.token for t in rewritten.logprobs) == " 1,000"
    # Log-probabilities the strategy drew for its own use are not returned.
    assert (await execute(_task(), ScriptedGenerator.of(*texts[:2]), _config(n=2))).logprobs is None
