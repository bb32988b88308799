"""The PRMs a server starts with: ``--prm NAME=SPEC``, repeatable.

SPEC is one of::

    step-checker                 rule-based arithmetic checker (no model)
    self-judge                   the served model judges each step
    pooling:MODEL_DIR[?tag=T]    Qwen2.5-Math-PRM-style model, second engine
    token-logit:MODEL_DIR[?good=G&bad=B&tag=T]
                                 Math-Shepherd-style causal LM, second engine
    remote:URL[?model=M&tag=T]   another vLLM server's /pooling endpoint

Beside them every server offers the reward-free scorers of
:mod:`ponder.prm.reward_free` by their own names, the hidden-state probe
fit for its model as ``probe`` (:mod:`ponder.prm.probe`) when it has one,
and the combinations of its calibrated policy (:mod:`ponder.prm.combined`:
``combined``, ``reward-free``), each over the parts its weights name.

Query values are percent-decoded but a ``+`` stays a plus sign (it is
Math-Shepherd's "good" token), unlike in HTML forms.
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, cast
from urllib.parse import unquote, urlsplit

from ponder.core.redaction import redact
from ponder.core.scoring import ScorerFactory, shared
from ponder.prm.combined import REWARD_FREE_PARTS, Combined
from ponder.prm.probe import ProbeSetup, open_probe
from ponder.prm.remote import open_remote_prm
from ponder.prm.reward_free import REWARD_FREE
from ponder.prm.self_judge import SelfJudge
from ponder.prm.step_checker import StepChecker

Kind = Literal["step-checker", "self-judge", "pooling", "token-logit", "remote"]
ENGINE_KINDS: tuple[Kind, ...] = ("pooling", "token-logit")
"""The kinds that run a vLLM engine in this process."""


@dataclass(frozen=True)
class _Shape:
    target: str | None
    """What follows the colon (None: nothing)."""
    options: frozenset[str] = frozenset()


_SHAPES: dict[str, _Shape] = {
    "step-checker": _Shape(None),
    "self-judge": _Shape(None),
    "pooling": _Shape("a model directory", frozenset({"tag"})),
    "token-logit": _Shape("a model directory", frozenset({"good", "bad", "tag"})),
    "remote": _Shape("a server URL", frozenset({"model", "tag"})),
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class PRMSpec:
    name: str
    kind: Kind
    target: str | None = None
    """The model directory, or the remote server's root URL."""
    options: dict[str, str] = field(default_factory=dict)


def parse_prm_spec(text: str) -> PRMSpec:
    """``NAME=SPEC`` to a spec; a ValueError says what is wrong and how the
    spec should look."""
    name, equals, spec = (part.strip() for part in text.partition("="))
    if not equals:
        raise _invalid(text, "expected NAME=SPEC, e.g. checker=step-checker")
    if not _NAME.fullmatch(name):
        raise _invalid(text, f"the name {name!r} must be letters, digits, '.', '_' or '-'")
    body, _, query = spec.partition("?")
    kind, _, target = body.partition(":")
    shape = _SHAPES.get(kind)
    if shape is None:
        raise _invalid(text, f"unknown kind {kind!r}; use one of {', '.join(_SHAPES)}")
    if shape.target is None and target:
        raise _invalid(text, f"{kind} takes no argument, but got {target!r}")
    if shape.target is not None and not target:
        raise _invalid(text, f"{kind} needs {shape.target}, as in {name}={kind}:PATH_OR_URL")
    if kind == "remote":
        _check_url(text, target)
    options = _options(text, query)
    unknown = sorted(set(options) - shape.options)
    if unknown:
        allowed = ", ".join(sorted(shape.options)) or "none"
        raise _invalid(text, f"unknown option {unknown[0]!r} for {kind} (allowed: {allowed})")
    return PRMSpec(name=name, kind=cast(Kind, kind), target=target or None, options=options)


def _invalid(text: str, problem: str) -> ValueError:
    """A spec's URL may carry credentials: the message shows it redacted."""
    return ValueError(redact(f"PRM {text!r}: {problem}"))


def _options(text: str, query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, equals, value = pair.partition("=")
        if not equals or not value:
            raise _invalid(text, f"option {pair!r} needs a value, as in {key}=VALUE")
        if key in options:
            raise _invalid(text, f"option {key!r} is given twice")
        options[key] = unquote(value)
    return options


def _check_url(text: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _invalid(text, f"{url!r} is not an http(s) URL, as in remote:http://host:8000")


def check_names(specs: Sequence[PRMSpec]) -> None:
    """Each configured name once, and none of the built-in scorers' names
    (a ValueError says which)."""
    names = [s.name for s in specs]
    repeated = [name for name, count in Counter(names).items() if count > 1]
    if repeated:
        raise ValueError(f"PRM name {repeated[0]!r} is given more than once")
    taken = sorted(set(names) & {*REWARD_FREE, *COMBINATIONS, PROBE})
    if taken:
        raise ValueError(
            f"PRM name {taken[0]!r} is a built-in scorer's; choose another"
        )


EngineStarted = Callable[[str, Any], None]
"""Told the name and the started ``AsyncLLM`` of each in-process engine."""


@asynccontextmanager
async def open_prms(
    specs: Sequence[PRMSpec], *, engine_args: Mapping[str, Mapping[str, Any]] | None = None,
    combinations: Mapping[str, Mapping[str, float]] | None = None,
    on_engine_started: EngineStarted | None = None,
    probe: ProbeSetup | None = None,
) -> AsyncIterator[dict[str, ScorerFactory]]:
    """The scorers by name, configured ones first, with any engines and HTTP
    clients they need; all of them are shut down on exit, also when a later
    one fails to start. ``engine_args`` are each in-process PRM engine's
    vLLM arguments by name (its memory, graph capture, dtype: the server
    decides them for the device); ``combinations`` are the policy's
    weighted verifiers; ``probe``, where the hidden-state probe and its
    hidden states come from."""
    check_names(specs)
    configured = [s.name for s in specs] + ([PROBE] if probe is not None else [])
    check_combinations(combinations or {}, configured)
    async with contextlib.AsyncExitStack() as stack:
        factories: dict[str, ScorerFactory] = {}
        for spec in specs:
            args = (engine_args or {}).get(spec.name, {})
            factories[spec.name] = await _open(spec, args, stack, on_engine_started)
        if probe is not None:
            factories[PROBE] = shared(await stack.enter_async_context(open_probe(probe)))
        for name, scorer in REWARD_FREE.items():
            factories[name] = shared(scorer)
        judges = {**factories, CHECKER: factories.get(CHECKER) or shared(StepChecker())}
        for name, weights in (combinations or {}).items():
            factories[name] = _combination(weights, judges)
        yield factories


COMBINATIONS = ("combined", "reward-free")
"""The policy's combinations, offered by these names."""
NEUTRAL_COMBINATIONS: dict[str, dict[str, float]] = {
    "combined": {"bias": -1.0, "step-checker": 1.0, "vote-share": 1.0},
    "reward-free": {"bias": -1.0, "vote-share": 1.0, "mean-logprob": 1.0},
}
"""Untrained weights, for a served model no policy was fit on: equal
weights over parts whose scale does not depend on the model (the step
checker's levels, the share of the vote, the mean token probability)."""
PROBE = "probe"
"""The hidden-state probe's name, when the server has one."""
CHECKER = "step-checker"
"""The step checker's part: in-process and free, so a combination that
weighs it has it even when no ``--prm`` names it."""


def check_combinations(combinations: Mapping[str, Mapping[str, float]],
                       configured: Sequence[str]) -> None:
    """Each combination is one the server offers, over parts it can read (a
    ValueError names the field of the policy file)."""
    readable = {*REWARD_FREE_PARTS, *REWARD_FREE, *configured, CHECKER}
    for name, weights in combinations.items():
        if name not in COMBINATIONS:
            raise ValueError(f"policy field 'verifiers.{name}': the server offers "
                             f"{' and '.join(COMBINATIONS)}")
        unknown = sorted(set(weights) - readable - {"bias"})
        if unknown:
            raise ValueError(f"policy field 'verifiers.{name}.{unknown[0]}': this server has no "
                             f"such verifier (it has {', '.join(sorted(readable))})")


def _combination(weights: Mapping[str, float], judges: Mapping[str, ScorerFactory]
                 ) -> ScorerFactory:
    """Judges are built per run, on the run's generator (the self-judge
    generates, and its tokens are the run's)."""
    step_judges = {n: judges[n] for n in weights if n in judges and n not in REWARD_FREE_PARTS}
    return lambda generator: Combined(
        weights, {n: factory(generator) for n, factory in step_judges.items()})


async def _open(
    spec: PRMSpec, engine_args: Mapping[str, Any], stack: contextlib.AsyncExitStack,
    on_engine_started: EngineStarted | None,
) -> ScorerFactory:
    if spec.kind == "step-checker":
        return shared(StepChecker())
    if spec.kind == "self-judge":
        return SelfJudge  # judges on each run's own generator
    assert spec.target is not None  # parse_prm_spec demands one for the kinds below
    # The engine-backed kinds import vLLM only when they are asked for.
    if spec.kind in ENGINE_KINDS:
        from ponder.prm.pooling import open_pooling_prm
        from ponder.prm.token_logit import open_token_logit_prm

        opener = open_pooling_prm if spec.kind == "pooling" else open_token_logit_prm
        scorer = await stack.enter_async_context(
            opener(spec.target, engine_args=engine_args, **spec.options))
        if on_engine_started is not None:
            on_engine_started(spec.name, scorer.engine)
        return shared(scorer)
    return shared(await stack.enter_async_context(open_remote_prm(spec.target, **spec.options)))
