"""Samples as separate requests: each can be stopped alone, the rest run on,
errors reach the consumer, and leaving stops whatever still runs."""

from __future__ import annotations

import pytest

from ponder.core.generation import Prompt, RequestRejected, SampleCollector, Sampling
from ponder.strategies.traces import Traces

from ..fakes import ScriptedGenerator, tokenize

PROMPT = Prompt(text="Count.")
LONG = "one two three four five six seven eight nine ten"


def _generator() -> ScriptedGenerator:
    return ScriptedGenerator(lambda _p, n, s: [f"{s.seed}: {LONG}"] * n, step_seconds=0.005)


async def test_one_sample_is_stopped_while_the_others_finish() -> None:
    gen = _generator()
    collected = SampleCollector(4)
    async with Traces(gen, PROMPT, Sampling(max_tokens=50, seed=10), range(1, 4)) as traces:
        async for delta in traces:
            collected.add(delta)
            if delta.index == 2 and len(collected.sample(2).token_ids) == 3:
                traces.stop(2)
    full = len(tokenize(f"11: {LONG}"))
    assert collected.sample(2).stop_reason == "abort"
    assert len(collected.sample(2).token_ids) < full
    assert [collected.sample(i).stop_reason for i in (1, 3)] == ["eos", "eos"]
    assert collected.sample(1).text.startswith("11:")  # seed + index, as a fanned-out child
    assert [s.seed for _, _, s in gen.calls] == [11, 12, 13]
    assert gen.closed_streams == 3


async def test_leaving_the_block_stops_every_sample() -> None:
    gen = _generator()
    async with Traces(gen, PROMPT, Sampling(max_tokens=50), range(3)) as traces:
        async for _delta in traces:
            break
    assert gen.closed_streams == 3


async def test_an_error_of_one_request_reaches_the_consumer() -> None:
    def script(_p: Prompt, n: int, s: Sampling) -> list[str]:
        if s.seed == 1:
            raise RequestRejected("too long", param="messages")
        return [LONG] * n

    gen = ScriptedGenerator(script, step_seconds=0.005)
    with pytest.raises(RequestRejected):
        async with Traces(gen, PROMPT, Sampling(max_tokens=50, seed=0), range(3)) as traces:
            async for _delta in traces:
                pass
