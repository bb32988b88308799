"""The self-judging PRM against a scripted generator: P(Yes) normalised
against P(No), one judge call per step with all of them in flight at once,
prompts that share their prefix, only new steps judged, and token accounting
through the run's meter."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from ponder.core.generation import Generation, Prompt, Sample, Sampling, TokenLogprob
from ponder.core.metering import Meter
from ponder.core.scoring import Solution
from ponder.prm.self_judge import NEUTRAL, TOP_LOGPROBS, SelfJudge

# The judge's first-token alternatives, by a word in the step judged.
GOOD = {"Yes": math.log(0.3), " yes": math.log(0.1), "No": math.log(0.1), "The": math.log(0.5)}
BAD = {" No": math.log(0.6), "no": math.log(0.2), "YES": math.log(0.2)}
UNSURE = {"Maybe": math.log(0.7), "I": math.log(0.3)}


def alternatives(prompt: Prompt) -> dict[str, float]:
    last_step = judged_text(prompt).rsplit("Step ", 1)[-1]
    return GOOD if "good" in last_step else BAD if "bad" in last_step else UNSURE


def judged_text(prompt: Prompt) -> str:
    assert prompt.messages is not None
    return prompt.messages[-1]["content"]


def prompt_tokens(prompt: Prompt) -> int:
    return len(judged_text(prompt).split())


@dataclass
class BarrierJudge:
    """Answers only once ``expected`` calls are waiting, so a judge that
    awaited its calls one by one would never get an answer."""

    expected: int
    answer: Callable[[Prompt], dict[str, float]] = alternatives
    calls: list[tuple[Prompt, int, Sampling]] = field(default_factory=list)
    everyone_here: asyncio.Event = field(default_factory=asyncio.Event)

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        self.calls.append((prompt, n, sampling))
        if len(self.calls) == self.expected:
            self.everyone_here.set()
        await self.everyone_here.wait()
        top = tuple(self.answer(prompt).items())
        sample = Sample("Yes", [1], "length", logprobs=[TokenLogprob("Yes", top[0][1], top)])
        return Generation(prompt_tokens=prompt_tokens(prompt), samples=[sample])


QUESTION = "What is 2 + 2, times 2?"
SOLUTIONS = [
    Solution(("2 + 2 = 4 (good)", "then 4 * 2 = 9 (bad)", "so the answer is 9 (hmm)")),
    Solution(()),
    Solution(("the answer is 8 (good)",)),
]


async def test_scores_are_yes_normalised_against_no() -> None:
    judge = BarrierJudge(expected=4)
    scored = await asyncio.wait_for(SelfJudge(judge).score(QUESTION, SOLUTIONS), 10)
    assert scored.scores[0] == pytest.approx([0.4 / 0.5, 0.2 / 1.0, NEUTRAL])
    assert scored.scores[1] == []
    assert scored.scores[2] == pytest.approx([0.8])


async def test_one_greedy_call_per_step_all_in_flight_at_once() -> None:
    judge = BarrierJudge(expected=4)
    await asyncio.wait_for(SelfJudge(judge).score(QUESTION, SOLUTIONS), 10)
    assert len(judge.calls) == 4  # the barrier opened: every call was waiting
    for _prompt, n, sampling in judge.calls:
        assert n == 1
        assert sampling.max_tokens == 1
        assert sampling.temperature == 0
        assert sampling.top_logprobs == TOP_LOGPROBS


async def test_prompts_of_one_solution_share_their_prefix() -> None:
    judge = BarrierJudge(expected=3)
    await asyncio.wait_for(SelfJudge(judge).score("What is 2 + 2?", SOLUTIONS[:1]), 10)
    texts = sorted((judged_text(p) for p, _, _ in judge.calls), key=len)
    for shorter, longer in zip(texts, texts[1:]):
        shared = shorter[: shorter.index("Is step")]
        assert longer.startswith(shared)
    assert "What is 2 + 2?" in texts[0]
    assert texts[-1].endswith("Is step 3 correct? Answer Yes or No.")
    assert "so the answer is 9 (hmm)" in texts[-1]


async def test_steps_already_scored_are_not_judged_again() -> None:
    judge = BarrierJudge(expected=1)
    extended = Solution(SOLUTIONS[0].steps, known=(0.25, 0.5))
    scored = await asyncio.wait_for(SelfJudge(judge).score(QUESTION, [extended]), 10)
    assert len(judge.calls) == 1
    assert judged_text(judge.calls[0][0]).endswith("Is step 3 correct? Answer Yes or No.")
    assert scored.scores == [[0.25, 0.5, NEUTRAL]]


async def test_the_run_meter_counts_every_prompt_and_answer_token() -> None:
    judge = BarrierJudge(expected=4)
    meter = Meter()
    scored = await asyncio.wait_for(
        SelfJudge(meter.scoring_generator(judge)).score(QUESTION, SOLUTIONS), 10
    )
    assert scored.tokens == 0  # counted where they are spent, once
    assert meter.usage.scoring_tokens == sum(prompt_tokens(p) + 1 for p, _, _ in judge.calls)
    assert meter.usage.scoring_tokens > 4
    assert meter.spent == 4  # the judge's answers count against the budget
    assert meter.usage.completion_tokens == meter.usage.prompt_tokens == 0
