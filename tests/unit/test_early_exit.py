"""Early exit (Dynasor-CoT's probes) over the scripted engine: a probe
every T tokens forks the chain by token ids, K equal answers in a row stop
the chain in the engine and not fewer, the probes never reach the visible
text and are counted on their own line, and a seeded run repeats."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ponder.core.generation import JsonOutput, Prompt, RequestRejected, Sampling
from ponder.strategies import best_of_n, cot, none, self_consistency
from ponder.strategies.base import Task, Verifiers
from ponder.strategies.early_exit import EarlyExitSpec
from ponder.strategies.prompts import answer_cues
from ponder.strategies.reasoning import NoReasoning

from ..fakes import RecordingEmitter, ScriptedGenerator, ScriptedPRM, execute, tokenize

WORDS = " ".join(f"w{i}" for i in range(1, 41))
CHAIN = f"{WORDS}. Answer: 5"  # 40 word tokens, then the answer
EVERY = 4


class Engine(ScriptedGenerator):
    """Chains write CHAIN; a probe (greedy, after the cue) answers what
    ``answers`` says for the number of chain tokens it was forked at."""

    def __init__(self, answers: dict[int, str], chain: str = CHAIN) -> None:
        super().__init__(self._answer)
        self.answers = answers
        self.chain = chain
        self.cues = answer_cues(self.encode, None)
        self.step_seconds = 0.01  # long enough for a probe to answer mid-chain
        self.forks: list[int] = []

    def _answer(self, prompt: Prompt, n: int, sampling: Sampling) -> list[str]:
        cue = self.cues.marker.ids
        if sampling.temperature == 0 and tuple(prompt.continuation[-len(cue):]) == cue:
            forked = len(prompt.continuation) - len(cue)
            self.forks.append(forked)
            return [self.answers.get(forked, " I am not sure")] * n
        return [self.chain] * n

    def probe_calls(self) -> list[int]:
        return [i for i, (_p, _n, s) in enumerate(self.calls) if s.temperature == 0]


def _task(gen: Engine, seed: int | None = None, **sampling: object) -> Task:
    return Task(Prompt(messages=({"role": "user", "content": "What is 2 + 3?"},)),
                Sampling(max_tokens=200, temperature=0.7, seed=seed, **sampling),  # type: ignore[arg-type]
                NoReasoning(), cues=gen.cues)


def _exit(agree: int = 2) -> EarlyExitSpec:
    return EarlyExitSpec(every=EVERY, agree=agree, probe_tokens=8)


async def test_the_chain_stops_after_k_agreements_and_not_before() -> None:
    gen = Engine({4: " 7", 8: " 5", 12: " 5", 16: " 5"})
    result = await execute(_task(gen), gen, cot.Config(early_exit=_exit(agree=2)))
    # 7 then 5 is no agreement; 5 and 5 is: the chain stops at the fork of 12.
    assert gen.forks[:3] == [4, 8, 12]
    assert result.answer is None and result.content == "5"
    assert result.early_exits == 1
    assert result.reasoning == "".join(tokenize(CHAIN)[:12]) + "\n"
    # The chain was aborted in the engine, short of its end.
    chain_call = next(i for i, (_p, _n, s) in enumerate(gen.calls) if s.temperature > 0)
    assert [a.call for a in gen.aborts] == [chain_call]
    assert gen.aborts[0].tokens < len(tokenize(CHAIN))
    three = await execute(_task(gen), Engine({4: " 7", 8: " 5", 12: " 5", 16: " 5"}),
                          cot.Config(early_exit=_exit(agree=3)))
    assert three.reasoning == "".join(tokenize(CHAIN)[:16]) + "\n"


async def test_without_agreement_the_chain_runs_to_its_end() -> None:
    gen = Engine({at: f" {at}" for at in range(4, 44, 4)})
    result = await execute(_task(gen), gen, cot.Config(early_exit=_exit()))
    assert result.early_exits == 0 and result.content == "5"
    assert result.reasoning == f"{WORDS}. "
    assert gen.aborts == [] or all(a.call in gen.probe_calls() for a in gen.aborts)


async def test_probes_are_counted_on_their_own_line_and_never_shown() -> None:
    gen = Engine({4: " 99", 8: " 5", 12: " 5"})
    emitter = RecordingEmitter()
    result = await execute(_task(gen), gen, cot.Config(early_exit=_exit()), emitter)
    shown = emitter.text("reasoning") + emitter.text("content")
    assert "99" not in shown  # the probe that did not agree
    assert shown == f"{result.reasoning}{result.content}"
    assert emitter.text("content") == result.content == "5"
    probe_tokens = len(gen.probe_calls())  # one token each (" 99", " 5", " 5")
    cue_tokens = len(gen.cues.marker.ids)
    assert result.usage.probe_tokens == probe_tokens + cue_tokens
    # Every token the chain made counts, kept or cut off, and so do the probes.
    chain_made = sum(a.tokens for a in gen.aborts if a.call not in gen.probe_calls())
    assert result.usage.completion_tokens == chain_made + probe_tokens + cue_tokens
    assert chain_made >= 12
    # Each probe forked the chain by its token ids: the prompt plus the chain so far.
    for call in gen.probe_calls():
        assert len(gen.calls[call][0].continuation) in (4 + cue_tokens, 8 + cue_tokens,
                                                        12 + cue_tokens)


async def test_every_sample_of_a_vote_exits_on_its_own() -> None:
    gen = Engine({8: " 5", 12: " 5"})
    result = await execute(_task(gen), gen, self_consistency.Config(
        n=3, prompt="cot", early_exit=_exit()))
    assert result.answer == "5" and result.votes == {"5": 3}
    assert result.early_exits == 3
    assert all(c.tokens == 12 + len(gen.cues.marker.ids) + 1 for c in result.candidates)
    assert len({call for call in range(len(gen.calls))} - set(gen.probe_calls())) == 3


async def test_short_vote_and_pruning_take_early_exit_too() -> None:
    gen = Engine({8: " 5", 12: " 5"})
    short = await execute(_task(gen), gen, self_consistency.Config(
        n=3, first=2, prompt="cot", early_exit=_exit()))
    assert short.answer == "5" and short.early_exits >= 2
    gen = Engine({8: " 5", 12: " 5"})
    task = Task(_task(gen).prompt, _task(gen, seed=0).sampling, NoReasoning(),
                Verifiers.of("prm", prm=ScriptedPRM({})), cues=gen.cues)
    pruned = await execute(task, gen, best_of_n.Config(
        n=2, prompt="cot", prune_every=6, early_exit=_exit()))
    assert pruned.answer == "5"


async def test_seeds_make_a_run_repeatable() -> None:
    runs = []
    for _ in range(2):
        gen = Engine({4: " 5", 8: " 6", 12: " 6"})
        runs.append(await execute(_task(gen, seed=3), gen, self_consistency.Config(
            n=2, prompt="cot", early_exit=_exit())))
    assert [c.text for c in runs[0].candidates] == [c.text for c in runs[1].candidates]
    assert runs[0].answer == runs[1].answer == "6"


async def test_none_probes_with_the_plain_cue() -> None:
    gen = Engine({})
    plain = gen.cues.plain.ids

    def script(prompt: Prompt, n: int, sampling: Sampling) -> list[str]:
        if sampling.temperature == 0 and tuple(prompt.continuation[-len(plain):]) == plain:
            return [" 5."] * n
        return [CHAIN] * n

    gen.script = script
    result = await execute(_task(gen), gen, none.Config(early_exit=_exit()))
    assert result.content.endswith("The final answer is 5.")
    assert result.early_exits == 1


async def test_json_output_cannot_exit_early() -> None:
    gen = Engine({})
    with pytest.raises(RequestRejected) as caught:
        await execute(_task(gen, json_output=JsonOutput()), gen,
                      none.Config(early_exit=_exit()))
    assert caught.value.param == "strategy.early_exit"


def test_the_spec_is_checked() -> None:
    with pytest.raises(ValidationError):
        EarlyExitSpec(every=0)
    with pytest.raises(ValidationError):
        cot.Config(early_exit={"every": 8, "agree": 2, "bogus": 1})  # type: ignore[arg-type]


def test_a_thinking_model_is_probed_by_closing_its_thinking() -> None:
    gen = ScriptedGenerator.of("")
    cues = answer_cues(gen.encode, "\n</think>\n\n")
    assert cues.thinking is not None
    assert cues.for_style("cot") == cues.for_style("direct") == cues.thinking
    plain = answer_cues(gen.encode, None)
    assert plain.for_style("cot").text == "\nAnswer:"
    assert plain.for_style("direct").text == "\nThe final answer is"
    assert gen.text_of(plain.for_style("cot").ids) == "\nAnswer:"
