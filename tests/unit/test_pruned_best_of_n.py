"""Speculative rejection (best_of_n's ``prune_every``) over the scripted
engine and PRM: the lowest-scored partial samples are aborted in the engine
at each checkpoint and never come back, scores of whole steps are reused,
the floor and the budget hold, and a seeded run repeats."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ponder.core.generation import Prompt, Sampling
from ponder.core.metering import Budget
from ponder.prm.step_checker import StepChecker
from ponder.strategies import best_of_n, pruning
from ponder.strategies.base import Task, Verifiers
from ponder.strategies.reasoning import NoReasoning

from ..fakes import RecordingEmitter, ScriptedGenerator, ScriptedPRM, execute, tokenize

GOOD = "Good step one.\n\nGood step two.\n\nGood step three.\n\nAnswer: 5"
BAD = "Bad step one.\n\nBad step two.\n\nBad step three.\n\nAnswer: 9"
TABLE = {"Good step one.": 0.9, "Good step two.": 0.8, "Good step three.": 0.9,
         "Bad step one.": 0.2, "Bad step two.": 0.1, "Bad step three.": 0.1}
STEP = len(tokenize("Good step one.\n\n"))  # 5 tokens: a checkpoint per step


def _engine(*texts: str) -> ScriptedGenerator:
    """Sample i (seeded s + i, one engine request each) writes texts[i]."""
    gen = ScriptedGenerator(lambda _p, n, sampling: [texts[(sampling.seed or 0) % len(texts)]] * n)
    gen.step_seconds = 0.001  # the samples decode side by side
    return gen


def _task(prm: ScriptedPRM) -> Task:
    return Task(Prompt(messages=({"role": "user", "content": "What is 2 + 3?"},)),
                Sampling(max_tokens=200, temperature=0.7, seed=0), NoReasoning(),
                Verifiers.of("prm", prm=prm))


def _seed(gen: ScriptedGenerator, call: int) -> int:
    return gen.calls[call][2].seed or 0


async def test_the_lowest_scored_are_aborted_and_never_come_back() -> None:
    gen, prm = _engine(BAD, GOOD, BAD, GOOD), ScriptedPRM(TABLE)
    result = await execute(_task(prm), gen, best_of_n.Config(n=4, prune_every=STEP))
    # The first checkpoint stops both bad samples in the engine.
    assert sorted(_seed(gen, a.call) for a in gen.aborts if a.tokens <= STEP + 1)[:2] == [0, 2]
    first = result.checkpoints[0]
    assert first["tokens"] == STEP and first["pruned"] == [0, 2]
    # They are in no later checkpoint, and cannot be chosen.
    assert all(0 not in c["scores"] and 2 not in c["scores"] for c in result.checkpoints[1:])
    assert [c.pruned_at for c in result.candidates][0::2] == [STEP, STEP]
    assert [c.finish_reason for c in result.candidates][0::2] == ["abort", "abort"]
    assert result.answer == "5" and result.selected in (1, 3)
    assert result.stopped_early
    # Every sample ran in the engine as its own request, aborts included.
    assert len(gen.calls) == 4
    assert result.usage.completion_tokens < 4 * len(tokenize(GOOD))


async def test_whole_steps_are_scored_once() -> None:
    gen, prm = _engine(GOOD, GOOD), ScriptedPRM(TABLE)
    result = await execute(_task(prm), gen, best_of_n.Config(n=2, prune_every=STEP))
    scored = [step for _question, per_solution in prm.calls for steps in per_solution
              for step in steps]
    # The kept sample's whole steps went to the scorer once each (a tail
    # still being written is scored again when it has grown).
    for step in ("Good step one.", "Good step two.", "Good step three."):
        assert scored.count(step) <= 2  # once per sample, at most
    assert result.answer == "5"
    survivor = result.candidates[result.selected or 0]
    assert survivor.step_scores == [0.9, 0.8, 0.9, 0.5]


async def test_the_floor_holds_for_a_weighted_vote() -> None:
    gen, prm = _engine(GOOD, BAD, BAD, BAD), ScriptedPRM(TABLE)
    result = await execute(_task(prm), gen, best_of_n.Config(
        n=4, prune_every=STEP, prune_keep=0.25, weighted_vote=True))
    alive = [c for c in result.candidates if c.pruned_at is None]
    assert len(alive) == best_of_n.VOTE_FLOOR
    assert result.checkpoints[0]["pruned"] == [3]  # the ties go to the lower index
    plain = await execute(_task(ScriptedPRM(TABLE)), _engine(GOOD, BAD, BAD, BAD),
                          best_of_n.Config(n=4, prune_every=STEP, prune_keep=0.25))
    assert sum(c.pruned_at is None for c in plain.candidates) == 1
    assert plain.answer == "5"


async def test_the_budget_holds() -> None:
    gen, prm = _engine(GOOD, BAD, GOOD, BAD), ScriptedPRM(TABLE)
    result = await execute(_task(prm), gen, best_of_n.Config(n=4, prune_every=STEP),
                           budget=Budget(max_tokens=30))
    assert result.budget_exhausted
    assert result.usage.completion_tokens <= 30 + 4  # each running sample's last token
    assert result.candidates[result.selected or 0].pruned_at is None


async def test_seeds_make_a_run_repeatable() -> None:
    runs = [await execute(_task(ScriptedPRM(TABLE)), _engine(BAD, GOOD, GOOD, BAD, GOOD),
                          best_of_n.Config(n=5, prune_every=3)) for _ in range(2)]
    assert runs[0].checkpoints == runs[1].checkpoints
    assert runs[0].selected == runs[1].selected and runs[0].answer == runs[1].answer
    assert [c.text for c in runs[0].candidates] == [c.text for c in runs[1].candidates]


async def test_checkpoints_stream_as_progress_before_the_answer() -> None:
    emitter = RecordingEmitter()
    await execute(_task(ScriptedPRM(TABLE)), _engine(BAD, GOOD),
                  best_of_n.Config(n=2, prune_every=STEP), emitter)
    assert f"Checkpoint at {STEP} tokens: 1 of 2 running samples go on; stopped 1." in (
        emitter.text("progress"))
    assert emitter.events[-1][0] == "content"


def test_prune_keep_needs_prune_every() -> None:
    with pytest.raises(ValidationError, match="set prune_every"):
        best_of_n.Config(n=8, prune_keep=0.3)
    with pytest.raises(ValidationError):
        best_of_n.Config(n=8, prune_every=0)


async def test_a_tie_keeps_the_more_confident_sample() -> None:
    unsure, sure = GOOD.replace("one", "uno"), GOOD.replace("one", "eins")
    gen = _engine(unsure, sure)
    gen.logprobs = {unsure: -20.0, sure: -2.0}
    result = await execute(_task(ScriptedPRM({})), gen, best_of_n.Config(n=2, prune_every=STEP))
    assert result.checkpoints[0]["pruned"] == [0]
    assert result.selected == 1


@pytest.mark.parametrize(("text", "end", "settled"), [
    ("12 * 3 = 36 apples", len("12 * 3 = 3"), "12 * 3 = "),  # the "3" of "36"
    ("12 * 3 = 36 apples", len("12 * 3 = 36"), "12 * 3 = "),  # or "360": not yet closed
    ("12 * 3 = 36 apples", len("12 * 3 = 36 "), "12 * 3 = 36 "),
    ("It costs 3.5 dollars", len("It costs 3."), "It costs "),
    ("12 * 3 = 36\n\nSo", len("12 * 3 = 36\n\n"), "12 * 3 = 36\n\n"),
    ("(36)", 4, "(36)"),
    ("36", 1, ""),
    ("答案是三十六", 4, "答案是三"),  # written without spaces: nothing to wait for
])
def test_a_checkpoint_never_scores_a_number_cut_in_two(text: str, end: int, settled: str) -> None:
    assert text[:pruning.settled_end(text, end)] == settled


async def test_a_right_sample_cut_mid_number_is_not_pruned_for_it() -> None:
    # At 6 tokens the right sample has written the "3" of "36": read as
    # "4 * 9 = 3" the step checker would call it as wrong as the wrong one,
    # and the tie would keep sample 0.
    wrong, right = "4 * 9 = 4\nAnswer: 4", "So 4 * 9 = 36\nAnswer: 36"
    gen = _engine(wrong, right)
    gen.digit_tokens = True
    task = Task(Prompt(messages=({"role": "user", "content": "What is 4 * 9?"},)),
                Sampling(max_tokens=200, temperature=0.7, seed=0), NoReasoning(),
                Verifiers.of("checker", checker=StepChecker()))
    result = await execute(task, gen, best_of_n.Config(n=2, prune_every=6, prune_keep=0.5))
    assert result.checkpoints[0]["pruned"] == [0]
    assert result.answer == "36"
