"""best_of_n over a scripted generator and a scripted PRM."""

from __future__ import annotations

import pytest

from ponder.core.generation import Prompt, RequestRejected, Sampling
from ponder.strategies import best_of_n
from ponder.strategies.base import Task, Verifiers
from ponder.strategies.reasoning import NoReasoning

from ..fakes import RecordingEmitter, ScriptedGenerator, ScriptedPRM, execute


def _task(prm: ScriptedPRM) -> Task:
    return Task(
        Prompt(messages=({"role": "user", "content": "What is 2 + 5?"},)),
        Sampling(max_tokens=100, temperature=0.8),
        NoReasoning(),
        Verifiers.of(default="judge", judge=prm),
    )


SOLUTIONS = [
    "2 + 5 = 8\n\nAnswer: 8",
    "2 + 5 = 7\n\nAnswer: 7",
    "2 + 5 = 6\n\nAnswer: 6",
]
TABLE = {"2 + 5 = 7": 1.0, "2 + 5 = 8": 0.0, "2 + 5 = 6": 0.2, "Answer: 7": 0.9,
         "Answer: 8": 0.9, "Answer: 6": 0.9}


async def test_the_best_scored_solution_wins() -> None:
    prm = ScriptedPRM(TABLE)
    gen = ScriptedGenerator.of(*SOLUTIONS)
    result = await execute(_task(prm), gen, best_of_n.Config(n=3))
    assert len(prm.calls) == 1  # every candidate scored in one batch
    question, steps = prm.calls[0]
    assert question == "What is 2 + 5?"
    assert steps[1] == ["2 + 5 = 7", "Answer: 7"]
    assert result.answer == result.content == "7"
    assert result.scores == [0.0, 0.9, 0.2]  # min over steps
    assert [c.step_scores for c in result.candidates][1] == [1.0, 0.9]
    assert result.usage.scoring_tokens == 60
    assert (result.scorer, result.selected) == ("judge", 1)
    assert result.votes == {"8": 1, "7": 1, "6": 1}


async def test_aggregate_changes_the_choice() -> None:
    prm = ScriptedPRM({**TABLE, "Answer: 8": 0.95})
    gen = ScriptedGenerator.of(*SOLUTIONS)
    result = await execute(_task(prm), gen, best_of_n.Config(n=3, aggregate="last"))
    assert result.answer == "8"


async def test_weighted_vote_sums_scores_per_answer() -> None:
    texts = ["Answer: 5", "Answer: 5.0", "Answer: 9"]
    prm = ScriptedPRM({"Answer: 5": 0.5, "Answer: 5.0": 0.5, "Answer: 9": 0.9})
    best = await execute(_task(prm), ScriptedGenerator.of(*texts), best_of_n.Config(n=3))
    voted = await execute(
        _task(prm), ScriptedGenerator.of(*texts), best_of_n.Config(n=3, weighted_vote=True)
    )
    assert best.answer == "9"
    assert voted.answer == "5"  # 0.5 + 0.5 outweighs 0.9
    assert voted.votes == {"5": 2, "9": 1}


async def test_unknown_prm_is_a_bad_request() -> None:
    with pytest.raises(RequestRejected) as caught:
        await execute(_task(ScriptedPRM({})), ScriptedGenerator.of("1"),
                            best_of_n.Config(n=2, prm="oracle"))
    assert caught.value.param == "strategy.prm"


async def test_streaming_reports_each_solution_then_the_scores() -> None:
    emitter = RecordingEmitter()
    result = await execute(
        _task(ScriptedPRM(TABLE)), ScriptedGenerator.of(*SOLUTIONS), best_of_n.Config(n=3), emitter
    )
    progress = emitter.text("progress")
    assert progress.count("Solution ") == 3
    assert "Scores: '8' 0.00, '7' 0.90, '6' 0.20." in progress
    assert emitter.events[-1] == ("content", result.content)
