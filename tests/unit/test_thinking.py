"""Budget forcing (s1) over the scripted generator: a cap reached
mid-thinking ends the thinking for the sample and lets it answer; an early
end is taken back and extended with "Wait", up to a limit; every phase
continues from the sample's own token ids, and every sample of a strategy
gets the same budget, counted in usage."""

from __future__ import annotations

from ponder.core.generation import Prompt, Sampling
from ponder.strategies import STRATEGIES
from ponder.strategies.base import Task, ThinkingControl
from ponder.strategies.reasoning import MarkerSplitter
from ponder.strategies.thinking import BudgetForcing, ThinkingBudget, ThinkingMarkers

from ..asgi import asgi_app, asgi_client
from ..fakes import ScriptedGenerator, tokenize

END = "</think>"
MARKERS = ThinkingMarkers(end=END, end_ids=(-1,), close=f"\n{END}\n\n", close_ids=(-2, -1, -3),
                          wait="\nWait", wait_ids=(-4, -5))
PROMPT = Prompt(text="What is 2 + 2?", token_ids=(1, 2, 3))


def _phases(*texts: str) -> ScriptedGenerator:
    """The i-th call of one sample returns ``texts[i]`` (calls counted by
    how many were made, since each phase is its own engine call)."""
    generator = ScriptedGenerator(lambda _p, n, _s: [texts[len(generator.calls) - 1]] * n)
    return generator


def _forcing(generator: ScriptedGenerator, **budget: int) -> BudgetForcing:
    return BudgetForcing(generator, MARKERS, ThinkingBudget(**budget))


async def test_a_cap_reached_mid_thinking_ends_the_thinking_and_the_sample_answers() -> None:
    generator = _phases("one two three four five six", "The answer is 4.")
    sample = (await _forcing(generator, max_tokens=4).generate(
        PROMPT, 1, Sampling(max_tokens=64))).samples[0]
    assert sample.text == f"one two three four\n{END}\n\nThe answer is 4."
    assert sample.stop_reason == "eos"
    first, second = generator.calls
    assert first[2].max_tokens == 4 and END in first[2].stop and first[2].include_stop
    # The answer continues from the thinking's own ids plus the forced end.
    assert second[0].continuation == (*sample.token_ids[:4], *MARKERS.close_ids)
    assert END not in second[2].stop and second[2].max_tokens == 64 - 4 - 3
    assert len(sample.token_ids) == 4 + 3 + len(tokenize("The answer is 4."))


async def test_an_early_end_is_taken_back_and_extended_with_wait() -> None:
    generator = _phases(f"a b {END}", f" c d e f g {END}", "Answer: 4")
    sample = (await _forcing(generator, min_tokens=6).generate(
        PROMPT, 1, Sampling(max_tokens=64))).samples[0]
    assert sample.text == f"a b\nWait c d e f g {END}Answer: 4"  # " </" went back whole
    assert len(generator.calls) == 3
    second = generator.calls[1]
    assert second[0].continuation == (*sample.token_ids[:2], *MARKERS.wait_ids)
    assert END in second[2].stop  # still thinking


async def test_extensions_stop_at_their_limit() -> None:
    generator = _phases(f"a {END}", f" b {END}", f" c {END}", "Answer: 4")
    sample = (await _forcing(generator, min_tokens=100, max_extensions=1).generate(
        PROMPT, 1, Sampling(max_tokens=64))).samples[0]
    # One extension, then the next end stands and the answer follows.
    assert sample.text == f"a\nWait b {END} c {END}"
    assert sample.text.count("Wait") == 1 and len(generator.calls) == 3


async def test_the_request_cap_still_holds_over_all_phases() -> None:
    generator = _phases("one two three four five six", "The answer is four indeed.")
    sample = (await _forcing(generator, max_tokens=4).generate(
        PROMPT, 1, Sampling(max_tokens=9))).samples[0]
    assert len(sample.token_ids) == 9 and sample.stop_reason == "length"


async def test_every_sample_of_a_strategy_is_forced_and_counted() -> None:
    def script(prompt: Prompt, n: int, _s: Sampling) -> list[str]:
        return ["one two three four five"] * n if not prompt.continuation else [" 4"] * n

    generator = ScriptedGenerator(script)
    task = Task(PROMPT, Sampling(max_tokens=64, temperature=0.7), MarkerSplitter(END),
                thinking=ThinkingControl(MARKERS, ThinkingBudget(max_tokens=3)))
    strategy = STRATEGIES["self_consistency"]
    result = await strategy.execute(task, generator, strategy.config(n=3, prompt="direct"))
    assert result.answer == "4" and result.samples == 3
    # Each sample: 3 thinking tokens, the 3 of the forced end, 1 of answer.
    assert result.usage.completion_tokens == 3 * (3 + 3 + 1)
    assert result.reasoning_tokens >= 3 * 3


async def test_a_thinking_budget_on_a_model_that_does_not_think_in_tags_is_a_400() -> None:
    async with asgi_client(asgi_app(ScriptedGenerator.of("4"))) as http:
        reply = await http.post("/v1/chat/completions", json={
            "model": "smollm2", "messages": [{"role": "user", "content": "2 + 2?"}],
            "budget": {"thinking_tokens": 64},
        })
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "budget.thinking_tokens" and "--reasoning-parser" in error["message"]
