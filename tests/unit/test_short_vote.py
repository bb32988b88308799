"""short-m@k (self_consistency's ``first``) over the scripted engine: the
first m samples to finish vote, the others are aborted in the engine at
once, every token made is counted, ties go to the shortest, and which
options combine with it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ponder.core.generation import Prompt, Sampling
from ponder.strategies import self_consistency
from ponder.strategies.base import Task
from ponder.strategies.reasoning import NoReasoning

from ..fakes import RecordingEmitter, ScriptedGenerator, execute, tokenize

SHORT = "Answer: 7"  # 3 tokens
MIDDLE = "So it is 5. Answer: 5"  # 9 tokens
LONG = "Let me work this out slowly, one careful step after another. Answer: 5"


def _task(seed: int | None = None) -> Task:
    return Task(Prompt(messages=({"role": "user", "content": "What is 2 + 5?"},)),
                Sampling(max_tokens=200, temperature=0.7, seed=seed), NoReasoning())


async def test_the_first_m_to_finish_vote_and_the_rest_are_aborted() -> None:
    texts = [LONG, SHORT, LONG, MIDDLE, LONG]
    gen = ScriptedGenerator.of(*texts)
    result = await execute(_task(), gen, self_consistency.Config(n=5, first=2))
    assert result.stopped_early and result.votes == {"7": 1, "5": 1}
    finish = [c.finish_reason for c in result.candidates]
    assert finish == ["abort", "stop", "abort", "stop", "abort"]
    # The engine saw the three long samples cut off, and nothing else.
    assert sorted(a.index for a in gen.aborts) == [0, 2, 4]
    assert all(a.tokens < len(tokenize(LONG)) for a in gen.aborts)
    # What was made is what is counted: the finished samples whole, the
    # aborted ones as far as they got.
    made = len(tokenize(SHORT)) + len(tokenize(MIDDLE)) + sum(a.tokens for a in gen.aborts)
    assert result.usage.completion_tokens == made
    assert [c.tokens for c in result.candidates][0::2] == [a.tokens for a in gen.aborts]


async def test_a_tie_goes_to_the_shortest_where_the_full_vote_differs() -> None:
    texts = [LONG, SHORT, LONG, MIDDLE, LONG]
    full = await execute(_task(), ScriptedGenerator.of(*texts), self_consistency.Config(n=5))
    short = await execute(_task(), ScriptedGenerator.of(*texts),
                          self_consistency.Config(n=5, first=2))
    assert full.answer == "5"
    assert short.answer == "7" and short.selected is None
    assert short.content == "7"


async def test_samples_without_an_answer_do_not_fill_the_vote() -> None:
    texts = ["no idea", SHORT, MIDDLE, LONG]
    gen = ScriptedGenerator.of(*texts)
    result = await execute(_task(), gen, self_consistency.Config(n=4, first=2))
    assert result.votes == {"7": 1, "5": 1}
    assert [a.index for a in gen.aborts] == [3]


async def test_early_stop_ends_the_short_vote_sooner() -> None:
    # With first=3, two agreeing answers out of three cannot be caught.
    texts = ["Answer: 5", "Answer: 5", MIDDLE.replace("5", "6"), LONG, LONG]
    gen = ScriptedGenerator.of(*texts)
    result = await execute(_task(), gen,
                           self_consistency.Config(n=5, first=3, early_stop=True))
    assert result.votes == {"5": 2} and result.answer == "5"
    assert sorted(a.index for a in gen.aborts) == [2, 3, 4]


async def test_deepconf_offline_votes_among_the_first_m() -> None:
    texts = [LONG, SHORT, LONG, MIDDLE, LONG]
    gen = ScriptedGenerator.of(*texts)
    gen.top_logprobs = {t: -2.0 for t in texts}
    result = await execute(_task(), gen, self_consistency.Config(
        n=5, first=2, weighting="confidence"))
    assert set(result.votes or {}) == {"7", "5"}
    assert sorted(a.index for a in gen.aborts) == [0, 2, 4]


async def test_seeds_make_a_run_repeatable() -> None:
    def script(_prompt: Prompt, n: int, sampling: Sampling) -> list[str]:
        base = sampling.seed or 0
        return [[LONG, SHORT, MIDDLE][(base + i) % 3] for i in range(n)]

    runs = [await execute(_task(seed=4), ScriptedGenerator(script),
                          self_consistency.Config(n=6, first=3)) for _ in range(2)]
    assert runs[0].answer == runs[1].answer
    assert runs[0].usage == runs[1].usage
    assert [c.text for c in runs[0].candidates] == [c.text for c in runs[1].candidates]


async def test_progress_streams_before_the_answer() -> None:
    emitter = RecordingEmitter()
    gen = ScriptedGenerator.of(LONG, SHORT, MIDDLE)
    await execute(_task(), gen, self_consistency.Config(n=3, first=2), emitter)
    kinds = [kind for kind, _ in emitter.events]
    assert kinds[0] == "progress" and kinds[-1] == "content"
    assert "the first 2 to answer vote" in emitter.text("progress")


def test_which_options_combine_with_first() -> None:
    with pytest.raises(ValidationError, match="first .* cannot be more than n"):
        self_consistency.Config(n=4, first=5)
    with pytest.raises(ValidationError, match="online"):
        self_consistency.Config(n=8, online=True, first=4)
    self_consistency.Config(n=8, first=4, early_stop=True, confidence=0.9)
    self_consistency.Config(n=8, first=4, weighting="confidence", keep=0.5)
