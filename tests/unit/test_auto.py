"""``auto``, the combined verifier and sample reuse, over a scripted
generator: the probe decides, easy questions stop there, hard ones escalate
and the probe's samples count toward the vote or best-of-N."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ponder.core.answers import answer_shares
from ponder.core.generation import Prompt, Sampling
from ponder.core.policy import parse_choice, parse_policy
from ponder.core.scoring import Solution
from ponder.prm.combined import Combined
from ponder.prm.step_checker import StepChecker
from ponder.strategies import auto
from ponder.strategies.base import Task, Verifiers
from ponder.strategies.reasoning import NoReasoning
from ponder.strategies.registry import choice_config, policy_strategies
from ponder.strategies.reuse import Recorded

from ..fakes import RecordingEmitter, ScriptedGenerator, execute

POLICY_DATA = {
    "source": "test",
    "model": {"name": "smollm2", "fingerprint": "0123456789abcdef"},
    "probe": {"samples": 4, "answer_below": 0.3},
    # P(the probe's vote is right) rises with agreement: all four agree -> easy.
    "difficulty": {"bias": -3.0, "agreement": 6.0},
    "bins": [{"upper": 0.6, "choices": {"8": "best_of_n@8"}},
             {"upper": 1.0, "choices": {"8": "best_of_n@8", "16": "dvts@16"}}],
    "verifiers": {"combined": {"bias": -2.0, "step-checker": 2.0, "vote-share": 3.0}},
}
POLICY = parse_policy(POLICY_DATA, "test", policy_strategies())
WEIGHTS = POLICY.verifiers["combined"]


def _task(policy=POLICY) -> Task:
    return Task(Prompt(messages=({"role": "user", "content": "What is 2 + 5?"},)),
                Sampling(max_tokens=100, temperature=0.8, seed=11), NoReasoning(),
                Verifiers.of(default="combined",
                             combined=Combined(WEIGHTS, {"step-checker": StepChecker()})),
                policy=policy)


def _whole_calls(gen: ScriptedGenerator) -> list[tuple[int, Sampling]]:
    return [(n, sampling) for _, n, sampling in gen.calls if not sampling.stop]


async def test_an_easy_question_is_answered_by_the_probe() -> None:
    gen = ScriptedGenerator.of("2 + 5 = 7\nAnswer: 7")
    emit = RecordingEmitter()
    result = await execute(_task(), gen, auto.Config(n=16), emit)
    assert result.answer == "7"
    assert [n for n, _ in _whole_calls(gen)] == [4]  # the probe, and nothing after it
    assert result.decision is not None and result.decision.choice == "probe@4"
    assert result.decision.signals["agreement"] == 1.0
    assert "Difficulty" in emit.text("progress") and emit.text("content") == result.content
    assert result.usage.completion_tokens == sum(c.tokens for c in result.candidates)


async def test_a_hard_question_escalates_and_reuses_the_probe() -> None:
    gen = ScriptedGenerator.of("2 + 5 = 8\nAnswer: 8", "2 + 5 = 7\nAnswer: 7",
                               "2 + 5 = 6\nAnswer: 6", "2 + 5 = 9\nAnswer: 9")
    result = await execute(_task(), gen, auto.Config(n=8))
    assert result.decision is not None
    assert result.decision.choice == "best_of_n@8" and result.decision.bin == 1
    assert result.decision.probe_samples_reused == 4
    (probe_n, probe_sampling), (more_n, more_sampling) = _whole_calls(gen)
    assert (probe_n, more_n) == (4, 4)  # 8 samples, 4 of them the probe's
    assert more_sampling.seed == probe_sampling.seed + 4  # no sample drawn twice
    assert len(result.candidates) == 8
    assert result.answer == "7"  # the step checker grounds 2 + 5 = 7 alone
    assert result.usage.completion_tokens == sum(c.tokens for c in result.candidates)


async def test_a_search_choice_keeps_the_probe_on_show() -> None:
    gen = ScriptedGenerator.of("2 + 5 = 8\nAnswer: 8", "2 + 5 = 7\nAnswer: 7",
                               "2 + 5 = 6\nAnswer: 6", "2 + 5 = 9\nAnswer: 9")
    # dvts@16 after the probe's 4 samples: a budget of 20.
    result = await execute(_task(), gen, auto.Config(n=20, step_delimiter="\n"))
    assert result.decision is not None and result.decision.choice == "dvts@16"
    assert result.tree is not None and len(result.candidates) > 4
    assert result.scores is not None and len(result.scores) == len(result.candidates)
    assert result.selected is not None and result.candidates[result.selected].answer == "7"
    assert result.answer == "7"


async def test_a_budget_below_every_choice_stops_at_the_probe() -> None:
    gen = ScriptedGenerator.of("Answer: 8", "Answer: 7", "Answer: 6", "Answer: 9")
    result = await execute(_task(), gen, auto.Config(n=4))
    assert result.decision is not None and result.decision.choice == "probe@4"
    assert "covers no choice" in result.decision.why


async def test_auto_counts_its_probe_in_its_budget() -> None:
    """dvts@16 is the hard bin's choice at 16, but after a probe of 4 it
    would draw 20: within a budget of 16, best-of-N at 8 runs instead."""
    gen = ScriptedGenerator.of("2 + 5 = 8\nAnswer: 8", "2 + 5 = 7\nAnswer: 7",
                               "2 + 5 = 6\nAnswer: 6", "2 + 5 = 9\nAnswer: 9")
    result = await execute(_task(), gen, auto.Config(n=16, step_delimiter="\n"))
    assert result.decision is not None and result.decision.choice == "best_of_n@8"
    assert len(result.candidates) == 8 and result.tree is None


async def test_with_no_policy_for_the_model_the_neutral_rule_decides() -> None:
    agreed = await execute(_task(policy=None), ScriptedGenerator.of("2 + 5 = 7\nAnswer: 7"),
                           auto.Config(n=16))
    assert agreed.decision is not None and agreed.decision.choice == "probe@4"
    assert agreed.decision.difficulty is None and "model-neutral" in agreed.decision.policy
    gen = ScriptedGenerator.of("2 + 5 = 8\nAnswer: 8", "2 + 5 = 7\nAnswer: 7",
                               "2 + 5 = 6\nAnswer: 6", "2 + 5 = 9\nAnswer: 9")
    split = await execute(_task(policy=None), gen, auto.Config(n=12))
    assert split.decision is not None and split.decision.choice == "best_of_n@12"
    assert split.decision.probe_samples_reused == 4 and len(split.candidates) == 12


def test_every_choice_names_a_runnable_configuration() -> None:
    table = policy_strategies()
    assert {name: c.reuses_probe for name, c in table.items()} == {
        "self_consistency": True, "best_of_n": True, "beam_search": False, "dvts": False,
        "particle_filtering": False}
    shapes = {text: choice_config(parse_choice(text, table), {"prm": "combined"}) for text in
              ("self_consistency@4", "best_of_n@8", "beam_search@16", "dvts@8",
               "particle_filtering@16")}
    assert shapes["beam_search@16"].beam_width * shapes["beam_search@16"].expand == 16
    # A choice that reuses the probe's samples scores them as the probe did;
    # a search keeps the server's default scorer.
    assert shapes["best_of_n@8"].prm == "combined" and shapes["dvts@8"].prm is None
    assert choice_config(parse_choice("best_of_n@8?weighted_vote=true", table)).weighted_vote
    with pytest.raises(ValueError, match="not a valid best_of_n"):
        choice_config(parse_choice("best_of_n@8?prune=yes", table))
    short = choice_config(parse_choice("self_consistency@16?first=4", table))
    pruned = choice_config(parse_choice("best_of_n@16?prune_every=32&prune_keep=0.25", table))
    assert (short.n, short.first) == (16, 4)
    assert (pruned.n, pruned.prune_every, pruned.prune_keep) == (16, 32, 0.25)
    for bad in ("self_consistency@4?first=8", "best_of_n@16?prune_keep=0.5",
                "self_consistency@16?early_exit=32"):
        with pytest.raises(ValueError, match="is not a valid"):
            choice_config(parse_choice(bad, table))


async def test_a_choice_that_draws_its_own_way_is_not_handed_the_probe() -> None:
    """short-m@k's first to finish would always be the probe's samples,
    finished before it started: it draws all 16 afresh."""
    policy = parse_policy({**POLICY_DATA, "bins": [
        {"upper": 0.6, "choices": {"8": "best_of_n@8"}},
        {"upper": 1.0, "choices": {"20": "self_consistency@16?first=4"}}]}, "test",
        policy_strategies())
    gen = ScriptedGenerator.of("2 + 5 = 8\nAnswer: 8", "2 + 5 = 7\nAnswer: 7",
                               "2 + 5 = 6\nAnswer: 6", "2 + 5 = 9\nAnswer: 9")
    result = await execute(_task(policy), gen, auto.Config(n=20))
    assert result.decision is not None
    assert result.decision.choice == "self_consistency@16?first=4"
    assert result.decision.probe_samples_reused == 0
    assert [n for n, _ in _whole_calls(gen)] == [4, 16]


async def test_the_combined_score_weighs_the_vote_and_the_checker() -> None:
    combined = Combined({"bias": -2.0, "vote-share": 4.0, "step-checker": 2.0},
                        {"step-checker": StepChecker()})
    solutions = [Solution(("2 + 5 = 7", "Answer: 7"), answer="7"),
                 Solution(("2 + 5 = 7", "Answer: 7"), answer="7.0"),
                 Solution(("2 + 5 = 8", "Answer: 8"), answer="8")]
    scored = await combined.score("What is 2 + 5?", solutions)
    right, _, wrong = (steps[-1] for steps in scored.scores)
    assert right > wrong
    assert scored.parts is not None and scored.parts[0]["vote-share"] == pytest.approx(2 / 3)
    assert scored.parts[2]["step-checker"] < scored.parts[0]["step-checker"]
    # Causal: known scores pass through, only the new step is scored.
    again = await combined.score("What is 2 + 5?", [
        Solution(("2 + 5 = 7", "Answer: 7"), known=(0.123,), answer="7")])
    assert again.scores[0][0] == 0.123 and len(again.scores[0]) == 2


def test_vote_shares_compare_numbers_by_value() -> None:
    assert answer_shares(["1/2", "0.5", "x", None]) == [0.5, 0.5, 0.25, 0.0]
    assert answer_shares(['"64"', "64", " X "]) == [2 / 3, 2 / 3, 1 / 3]


async def test_recorded_samples_are_handed_out_once() -> None:
    gen = ScriptedGenerator.of("a", "b", "c")
    recorded = Recorded(gen)
    prompt = Prompt(text="q")
    # The request's own stop strings: still whole samples, still reused.
    sampling = Sampling(max_tokens=5, seed=3, stop=("###",))
    with recorded.recording():
        first = await recorded.generate(prompt, 2, sampling)
    streamed: Sequence[str] = []
    deltas = [d async for d in recorded.stream(prompt, 3, sampling)]
    streamed = ["".join(d.text for d in deltas if d.index == i) for i in range(3)]
    assert streamed[:2] == [s.text for s in first.samples] and recorded.reused == 2
    assert [n for _, n, _ in gen.calls] == [2, 1] and gen.calls[1][2].seed == 5
    stepwise = await recorded.generate(prompt, 2, Sampling(max_tokens=5, stop=("###", "\n")))
    assert len(stepwise.samples) == 2 and [n for _, n, _ in gen.calls] == [2, 1, 2]


async def test_nothing_is_recorded_unless_asked() -> None:
    gen = ScriptedGenerator.of("a", "b")
    recorded = Recorded(gen)
    prompt, sampling = Prompt(text="q"), Sampling(max_tokens=5, seed=3)
    await recorded.generate(prompt, 2, sampling)
    await recorded.generate(prompt, 2, sampling)
    assert recorded.reused == 0 and [n for _, n, _ in gen.calls] == [2, 2]
