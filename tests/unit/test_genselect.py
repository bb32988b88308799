"""genselect over a scripted generator: the model's judgements decide a
knock-out, every judging token is the run's, the rounds stream, and a group
too long for the context is split."""

from __future__ import annotations

import json
import re

from ponder.core.generation import Prompt, RequestRejected, Sampling
from ponder.strategies import STRATEGIES, genselect
from ponder.strategies.base import Task
from ponder.strategies.reasoning import NoReasoning

from ..fakes import RecordingEmitter, ScriptedGenerator, execute

QUESTION = "What is 2 + 5?"
CANDIDATES = ["2 + 5 = 8. Answer: 8", "2 + 5 = 6. Answer: 6", "2 + 5 = 7. Answer: 7",
              "2 + 5 = 8, so 8. Answer: 8"]


def _task() -> Task:
    return Task(Prompt(messages=({"role": "user", "content": QUESTION},)),
                Sampling(max_tokens=50, temperature=0.8, seed=3), NoReasoning())


def _judging(prompt: Prompt) -> list[str] | None:
    """The solutions a judging prompt shows, or None for the question itself."""
    content = (prompt.messages or ({},))[0].get("content", "")
    if "candidate solutions" not in content:
        return None
    return re.findall(r"Solution \d+:\n(.*)", content)


def _judge_of_sevens(prompt: Prompt, n: int, _sampling: Sampling) -> list[str]:
    """Candidates answer; the judge names the solution that says 7, else the last."""
    shown = _judging(prompt)
    if shown is None:
        return [CANDIDATES[i % len(CANDIDATES)] for i in range(n)]
    best = next((i for i, s in enumerate(shown, 1) if "= 7" in s), len(shown))
    return [f"Solution {best} adds correctly. Best solution: {best}"] * n


async def test_the_models_pick_wins_the_knockout_and_every_token_counts() -> None:
    gen = ScriptedGenerator(_judge_of_sevens)
    result = await execute(_task(), gen, genselect.Config(n=4, group=2))
    assert result.answer == "7"  # a minority answer: the vote would say 8
    assert result.selected == 2
    assert [[g["members"] for g in r["groups"]] for r in result.rounds] == [[[0, 1], [2, 3]],
                                                                           [[1, 2]]]
    judge_calls = [(p, n, s) for p, n, s in gen.calls if _judging(p) is not None]
    assert len(judge_calls) == 3
    assert all(s.temperature == 0.3 and s.max_tokens == 256 for _, _, s in judge_calls)
    assert result.usage.completion_tokens == len(gen.vocabulary)  # every token it produced
    assert result.usage.completion_tokens > sum(c.tokens for c in result.candidates)


async def test_a_judgement_without_a_pick_falls_back_to_the_vote() -> None:
    def mumbling(prompt: Prompt, n: int, _s: Sampling) -> list[str]:
        if _judging(prompt) is None:
            return [CANDIDATES[i % len(CANDIDATES)] for i in range(n)]
        return ["They all look fine to me."] * n

    result = await execute(_task(), ScriptedGenerator(mumbling), genselect.Config(n=4))
    assert result.answer == "8"
    assert result.rounds[0]["groups"][0]["how"] == "vote"


async def test_the_rounds_stream_as_they_are_played() -> None:
    emitter = RecordingEmitter()
    await execute(_task(), ScriptedGenerator(_judge_of_sevens), genselect.Config(n=4, group=2),
                  emitter)
    progress = emitter.text("progress")
    assert "Round 1: 4 candidates in 2 groups." in progress
    assert "Round 2: 2 candidates in 1 groups." in progress
    assert "Candidates 2, 3: the model picked 3 (answer '7')" in progress


async def test_a_group_too_long_for_the_context_plays_in_halves() -> None:
    def short_context(prompt: Prompt, n: int, sampling: Sampling) -> list[str]:
        shown = _judging(prompt)
        if shown is not None and len(shown) > 2:
            raise RequestRejected("The prompt is longer than the model's context.")
        return _judge_of_sevens(prompt, n, sampling)

    result = await execute(_task(), ScriptedGenerator(short_context),
                           genselect.Config(n=4, group=4))
    assert result.answer == "7"
    assert [g["members"] for g in result.rounds[0]["groups"]] == [[0, 1], [2, 3], [1, 2]]


def test_it_is_listed_with_its_parameters() -> None:
    strategy = STRATEGIES["genselect"]
    assert "knock-out" in strategy.summary or "names the best" in strategy.summary
    assert genselect.Config(n=8, judges=2).max_samples == 8 + 16


async def test_the_bracket_is_shown_in_the_details() -> None:
    result = await execute(_task(), ScriptedGenerator(_judge_of_sevens),
                           genselect.Config(n=4, group=2))
    shown = result.details()["rounds"]
    assert [len(r["groups"]) for r in shown] == [2, 1]
    assert json.dumps(shown)  # plain JSON, as the response carries it
