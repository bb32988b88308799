"""DeepConf (self_consistency's confidence options) and the reward-free
scorers, over hand-made log-probabilities and a scripted generator that
streams them: trace confidences, the warm-up's bar, the offline filter and
weighting, and the online stop of one sample in the generator."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from ponder.core.confidence import group_confidences, token_confidence, trace_confidence
from ponder.core.generation import Prompt, Sampling, TokenLogprob
from ponder.core.scoring import Solution
from ponder.prm.reward_free import SelfCertainty
from ponder.strategies import self_consistency
from ponder.strategies.base import Task
from ponder.strategies.deepconf import quantile
from ponder.strategies.reasoning import NoReasoning

from ..fakes import RecordingEmitter, ScriptedGenerator, execute, tokenize


def _tokens(*confidences: float) -> list[TokenLogprob]:
    """One token per confidence: its two best alternatives at -confidence."""
    return [TokenLogprob("x", -0.1, (("a", -c), ("b", -c))) for c in confidences]


def test_token_confidence_is_minus_the_mean_log_probability_of_the_best_alternatives() -> None:
    assert token_confidence(TokenLogprob("x", -0.1, (("a", -1.0), ("b", -3.0)))) == 2.0
    assert token_confidence(TokenLogprob("x", -0.7)) == 0.7  # no alternatives: its own


def test_groups_slide_over_the_trace() -> None:
    assert group_confidences([1, 2, 3, 4], 2) == [1.5, 2.5, 3.5]
    assert group_confidences([1, 2], 4) == [1.5]  # shorter than a window: one group
    assert group_confidences([], 4) == []


def test_trace_confidences() -> None:
    tokens = _tokens(*[10] * 8, 2, 2, *[10] * 10)  # a dip in the middle
    assert trace_confidence(tokens, "lowest_group", 2) == 2.0
    assert trace_confidence(tokens, "bottom_10", 2) == 2.0  # mean of the lowest 1 of 19
    assert trace_confidence(tokens, "tail", 4) == 10.0
    assert trace_confidence(tokens, "mean", 2) == pytest.approx(9.2)
    assert trace_confidence([], "mean", 2) == -math.inf


def test_the_bar_is_numpys_linear_quantile() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.9) == pytest.approx(3.7)
    assert quantile([5.0], 0.1) == 5.0
    assert quantile([-math.inf, -math.inf], 0.5) == -math.inf


async def test_self_certainty_ranks_a_sure_step_above_an_unsure_one() -> None:
    sure = TokenLogprob("5", math.log(0.99), (("5", math.log(0.99)), ("6", math.log(0.005))))
    # The k best hold half the probability: the rest is spread over the vocabulary.
    unsure = TokenLogprob("5", math.log(0.025), tuple(("t", math.log(0.025)) for _ in range(20)))
    solution = Solution(("5", "6", "7"), known=(0.3,), logprobs=((sure,), (sure,), (unsure,)))
    scored = await SelfCertainty().score("?", [solution])
    assert scored.scores[0][0] == 0.3  # known: kept
    assert scored.scores[0][1] == pytest.approx(0.995)  # 1 - the probability left outside
    assert scored.scores[0][2] == pytest.approx(0.5)
    assert scored.tokens == 0


QUESTION = Prompt(messages=({"role": "user", "content": "What is 2 + 5?"},))


def _task(seed: int | None = 100) -> Task:
    return Task(QUESTION, Sampling(max_tokens=50, temperature=0.8, seed=seed), NoReasoning())


def _by_seed(*texts: str) -> ScriptedGenerator:
    """Sample ``i`` says ``texts[i]``, whether it is drawn as the i-th child of
    one request or on its own with seed ``100 + i``."""
    return ScriptedGenerator(lambda _p, n, s: [texts[s.seed - 100 + k] for k in range(n)],
                             step_seconds=0.01)


async def test_offline_keep_votes_with_the_most_confident_samples_only() -> None:
    texts = ["Answer: 5", "Answer: 5", "Answer: 5", "Answer: 7", "Answer: 7"]
    gen = _by_seed(*texts)
    gen.top_logprobs = {"Answer: 5": -3.0, "Answer: 7": -9.0}
    plain = await execute(_task(), gen, self_consistency.Config(n=5, prompt="direct"))
    assert plain.answer == "5"
    kept = await execute(_task(), gen, self_consistency.Config(n=5, prompt="direct", keep=0.4))
    assert kept.answer == "7" and kept.votes == {"7": 2}
    assert [c.confidence for c in kept.candidates] == [3.0, 3.0, 3.0, 9.0, 9.0]
    assert gen.calls[-1][2].top_logprobs == 20  # the k best alternatives were asked for


async def test_offline_confidence_weighting_outweighs_a_count() -> None:
    gen = _by_seed("Answer: 5", "Answer: 5", "Answer: 7")
    gen.top_logprobs = {"Answer: 5": -2.0, "Answer: 7": -5.0}
    counted = await execute(_task(), gen, self_consistency.Config(n=3, prompt="direct"))
    weighted = await execute(_task(), gen, self_consistency.Config(
        n=3, prompt="direct", weighting="confidence"))
    assert counted.answer == "5"
    assert weighted.answer == "7"  # 5 outweighs 2 + 2
    assert weighted.votes == {"5": 2, "7": 1}


ONLINE = [
    "So the answer is 5.",  # warm-up, confidence 10: sets the bar with the next
    "So the answer is 6.",  # warm-up, confidence 8: below the bar, no vote
    "I think that the answer is 7.",  # confident: votes
    "Well, maybe it could be that the answer is 5 or 6 or 8 or 9.",  # loses confidence
    "The answer is 7.",  # confident enough: votes
]


async def test_online_stops_a_sample_below_the_bar_in_the_generator() -> None:
    gen = _by_seed(*ONLINE)
    gen.top_logprobs = {ONLINE[0]: -10.0, ONLINE[1]: -8.0, ONLINE[2]: -10.0,
                        ONLINE[3]: [-10.0, -10.0, -3.0], ONLINE[4]: -9.5}
    emitter = RecordingEmitter()
    result = await execute(_task(), gen, self_consistency.Config(
        n=5, prompt="direct", online=True, warmup=2, keep=0.5, window=2,
        weighting="confidence"), emitter)
    weak = result.candidates[3]
    assert result.details()["confidence_bar"] == 9.0  # between the warm-up's 10 and 8
    assert result.details()["stopped_low_confidence"] == 1
    assert weak.finish_reason == "abort"
    assert weak.tokens < len(tokenize(ONLINE[3]))  # stopped in the generator, part-way
    assert result.votes == {"5": 1, "7": 2}  # neither the weak warm-up nor the stopped vote
    assert result.answer == "7"
    assert result.stopped_early and result.tokens_saved_estimate is not None
    assert result.usage.completion_tokens == sum(c.tokens for c in result.candidates)
    # One request for the warm-up, then one per sample, each closed.
    assert [n for _, n, _ in gen.calls] == [2, 1, 1, 1]
    assert gen.closed_streams == 3
    assert "stopped" in emitter.text("progress")


async def test_a_sample_that_falls_below_the_bar_on_its_last_token_ends_unstopped_and_unvoted(
) -> None:
    # Stopping it would stop nothing: the engine already ended it. It is not
    # counted as stopped, and, like a weak warm-up sample, it does not vote.
    late = "The answer is 6."
    gen = _by_seed("So the answer is 5.", "So the answer is 6.", late, "The answer is 7.")
    gen.top_logprobs = {"So the answer is 5.": -10.0, "So the answer is 6.": -8.0,
                        late: [-10.0, -10.0, -10.0, -10.0, -1.0], "The answer is 7.": -10.0}
    emitter = RecordingEmitter()
    result = await execute(_task(), gen, self_consistency.Config(
        n=4, prompt="direct", online=True, warmup=2, keep=0.5, window=2), emitter)
    assert result.candidates[2].finish_reason == "stop"
    assert result.details()["stopped_low_confidence"] == 0
    assert result.votes == {"5": 1, "7": 1}
    assert "ended below the bar" in emitter.text("progress")


async def test_a_sample_the_engine_finished_before_its_stop_arrived_is_not_counted_stopped(
) -> None:
    # With no pause between steps the engine has made every delta before the
    # vote reads the one that falls below the bar: the stop comes too late.
    weak = "Well, maybe it could be that the answer is 5 or 6 or 8 or 9."
    gen = _by_seed(ONLINE[0], ONLINE[1], weak)
    gen.step_seconds = 0
    gen.top_logprobs = {ONLINE[0]: -10.0, ONLINE[1]: -8.0, weak: [-10.0, -10.0, -3.0]}
    result = await execute(_task(), gen, self_consistency.Config(
        n=3, prompt="direct", online=True, warmup=2, keep=0.5, window=2))
    assert result.candidates[2].finish_reason == "stop"
    assert result.candidates[2].tokens == len(tokenize(weak))
    assert result.details()["stopped_low_confidence"] == 0
    assert result.votes == {"5": 1}


async def test_online_ends_sampling_once_the_consensus_is_reached() -> None:
    short, long = "The answer is 5.", "Let me think about this for a long while; it is 5."
    gen = _by_seed(short, short, short, long, long, long)
    gen.top_logprobs = {short: -10.0, long: -10.0}
    result = await execute(_task(), gen, self_consistency.Config(
        n=6, prompt="direct", online=True, warmup=2, consensus=0.9))
    assert result.answer == "5"
    assert result.details()["stopped_low_confidence"] == 0
    assert [c.finish_reason for c in result.candidates[3:]] == ["abort"] * 3
    assert all(c.tokens < len(tokenize(long)) for c in result.candidates[3:])
    assert result.stopped_early and result.tokens_saved_estimate is not None
    assert result.usage.completion_tokens == sum(c.tokens for c in result.candidates)
    assert result.usage.completion_tokens < 3 * len(tokenize(short)) + 3 * len(tokenize(long))


async def test_online_draws_the_same_samples_as_one_fanned_out_request() -> None:
    texts = ["The answer is 1.", "The answer is 2.", "The answer is 3.", "The answer is 4."]
    gen = _by_seed(*texts)
    gen.top_logprobs = dict.fromkeys(texts, -10.0)
    result = await execute(_task(), gen, self_consistency.Config(
        n=4, prompt="direct", online=True, warmup=1, consensus=1.0))
    assert [c.text for c in result.candidates] == texts
    assert [s.seed for _, _, s in gen.calls] == [100, 101, 102, 103]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"online": True, "warmup": 8}, "warmup"),
        ({"early_stop": True, "keep": 0.5}, "keep"),
        ({"early_stop": True, "online": True}, "online"),
        ({"keep": 0}, "keep"),
        ({"consensus": 0.5}, "consensus"),
    ],
)
def test_inconsistent_options_are_refused(options: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        self_consistency.Config(n=8, **options)
    assert caught.value.errors()[0]["loc"] == (field,)
