"""``--prm NAME=SPEC`` parsing, its error messages, and opening the PRMs
that need no engine."""

from __future__ import annotations

import pytest

from ponder.prm.registry import PRMSpec, open_prms, parse_prm_spec
from ponder.prm.reward_free import REWARD_FREE
from ponder.prm.self_judge import SelfJudge
from ponder.prm.step_checker import StepChecker

from ..fakes import ScriptedGenerator, as_solutions


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("checker=step-checker", PRMSpec("checker", "step-checker")),
        (" judge = self-judge ", PRMSpec("judge", "self-judge")),
        ("qwen=pooling:/models/qwen-prm", PRMSpec("qwen", "pooling", "/models/qwen-prm")),
        (
            "q=pooling:Qwen/Qwen2.5-Math-PRM-7B?tag=%3Cextra_0%3E",
            PRMSpec("q", "pooling", "Qwen/Qwen2.5-Math-PRM-7B", {"tag": "<extra_0>"}),
        ),
        (
            "shepherd=token-logit:/m/shepherd?good=+&bad=-&tag=ки",
            PRMSpec("shepherd", "token-logit", "/m/shepherd",
                    {"good": "+", "bad": "-", "tag": "ки"}),
        ),
        ("far=remote:http://10.0.0.7:8000", PRMSpec("far", "remote", "http://10.0.0.7:8000")),
        (
            "far=remote:https://prm.example/?model=qwen-prm",
            PRMSpec("far", "remote", "https://prm.example/", {"model": "qwen-prm"}),
        ),
    ],
)
def test_parse(text: str, spec: PRMSpec) -> None:
    assert parse_prm_spec(text) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("step-checker", "expected NAME=SPEC"),
        ("=step-checker", "the name '' must be"),
        ("my prm=step-checker", "the name 'my prm' must be"),
        ("x=magic", "unknown kind 'magic'; use one of step-checker, self-judge, pooling, "
                    "token-logit, remote"),
        ("x=step-checker:/models/a", "step-checker takes no argument"),
        ("x=pooling", "pooling needs a model directory"),
        ("x=token-logit:", "token-logit needs a model directory"),
        ("x=remote:", "remote needs a server URL"),
        ("x=remote:localhost:8000", "is not an http(s) URL"),
        ("x=remote:ftp://host/", "is not an http(s) URL"),
        ("x=token-logit:/m?good=+&ugly=~",
         "unknown option 'ugly' for token-logit (allowed: bad, good, tag)"),
        ("x=self-judge?tag=y", "unknown option 'tag' for self-judge (allowed: none)"),
        ("x=token-logit:/m?good", "option 'good' needs a value"),
        ("x=token-logit:/m?good=+&good=-", "option 'good' is given twice"),
    ],
)
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
        parse_prm_spec(text)
    assert repr(text) in str(error.value)  # the message quotes what was given


async def test_open_prms_builds_the_engineless_models_and_the_reward_free_ones() -> None:
    specs = [parse_prm_spec("checker=step-checker"), parse_prm_spec("judge=self-judge")]
    generator = ScriptedGenerator.of("Yes")
    async with open_prms(specs) as factories:
        assert list(factories) == ["checker", "judge", *REWARD_FREE]
        checker = factories["checker"](generator)
        assert isinstance(checker, StepChecker) and factories["checker"](generator) is checker
        judge = factories["judge"](generator)  # a judge per run, on the run's generator
        assert isinstance(judge, SelfJudge) and judge.generator is generator
        scored = await checker.score("What is 1 + 1?", as_solutions(["1 + 1 = 2"]))
        assert scored.scores == [[1.0]]


async def test_open_prms_refuses_repeated_names() -> None:
    specs = [parse_prm_spec("a=step-checker"), parse_prm_spec("a=self-judge")]
    with pytest.raises(ValueError, match="'a' is given more than once"):
        async with open_prms(specs):
            pass


async def test_open_prms_keeps_the_reward_free_names() -> None:
    with pytest.raises(ValueError, match="'mean-logprob' is a built-in"):
        async with open_prms([parse_prm_spec("mean-logprob=step-checker")]):
            pass
