"""`reasoning_effort` as test-time compute: each level a strategy preset.

OpenAI's clients already have a word for "think harder" (``reasoning_effort``
on chat, ``reasoning.effort`` on responses), and LangChain, LiteLLM and chat
UIs expose it as a control. ponder keeps passing it to the chat template (as
vLLM does: gpt-oss and Qwen3 templates read it) and also lets it choose how
much compute the request gets, so a client reaches ponder's strategies
without ponder's own ``strategy`` field. An explicit ``strategy`` (or a
``model@strategy`` alias) wins.

An operator sets a level with ``--effort LEVEL=NAME`` or
``--effort 'LEVEL=NAME?key=value&key=value'`` (values read as JSON where they
parse, else as text), validated against the strategy's parameters at start.
"""

from __future__ import annotations

import json
from typing import Literal, get_args
from urllib.parse import parse_qsl

from pydantic import ValidationError

from ponder.strategies import STRATEGIES
from ponder.strategies.base import StrategyConfig

EffortLevel = Literal["none", "minimal", "low", "medium", "high"]
LEVELS: tuple[str, ...] = get_args(EffortLevel)

DEFAULT_PRESETS: dict[str, str] = {
    "none": "none",
    "minimal": "none",
    "low": "none",
    "medium": "best_of_n?n=4&prompt=direct",
    "high": "auto?n=16",
}
"""One sample up to ``low``; the verifier-guided choice among four at
``medium``; at ``high``, ``auto`` with up to sixteen samples' worth, spent
as the calibrated policy says the question needs. Verification is where
test-time compute pays on small models: the right answer is among 16
samples far more often than one sample or the vote finds it, and a vote of
four barely moves (docs/results.md: what each reasoning effort buys). The
messages go as they are (``prompt=direct``, auto's default
too): a step-by-step instruction hurts small models, and a thinking model
thinks by its template anyway."""


def describe_defaults() -> str:
    """The default presets as ``ponder serve --help`` lists them: levels
    that share a preset together."""
    levels_of: dict[str, list[str]] = {}
    for level, spec in DEFAULT_PRESETS.items():
        levels_of.setdefault(spec, []).append(level)
    return ", ".join(f"{_listed(levels)} = {spec}" for spec, levels in levels_of.items())


def _listed(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


NAMED_PRESETS: dict[str, str] = {
    "short-m@k": "self_consistency?n=16&first=4",
    "speculative-rejection": "best_of_n?n=16&prune_every=16&prune_keep=0.5",
    "early-exit": 'cot?early_exit={"every": 32, "agree": 2}',
}
"""Ready-made settings of the strategies that reach the same answer for
less compute, by name: ``--effort low=short-m@k`` gives a level one of them.
short-m@k votes among the first 4 of 16 samples to finish (Hassid et al.
2025); speculative rejection scores 16 samples every 16 tokens and stops the
lower half each time (Sun et al. 2024); early exit stops a step-by-step
chain once two probes 32 tokens apart give the same answer (Fu et al.
2024)."""


def parse_preset(text: str) -> tuple[str, StrategyConfig]:
    """``LEVEL=NAME?key=value&...`` as a level and a validated strategy
    config; a ValueError that names what is wrong otherwise."""
    level, sep, spec = text.partition("=")
    level = level.strip()
    if not sep or level not in LEVELS:
        raise ValueError(f"{text!r}: want LEVEL=STRATEGY with LEVEL one of {', '.join(LEVELS)}")
    return level, strategy_config(spec.strip(), where=text)


def strategy_config(spec: str, where: str) -> StrategyConfig:
    """A strategy with its parameters (``NAME?key=value&...``), or a named
    preset."""
    name, _, query = NAMED_PRESETS.get(spec, spec).partition("?")
    if name not in STRATEGIES:
        known = ", ".join([*STRATEGIES, *NAMED_PRESETS])
        raise ValueError(f"{where!r}: unknown strategy {name!r}; use one of {known}")
    params = {key: _value(value) for key, value in parse_qsl(query, keep_blank_values=True)}
    try:
        return STRATEGIES[name].config(**params)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()
        )
        raise ValueError(f"{where!r}: {problems}") from None


def _value(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def presets(overrides: list[str]) -> dict[str, StrategyConfig]:
    """Every level's strategy: the defaults, with the operator's on top."""
    chosen = {level: strategy_config(spec, f"{level}={spec}")
              for level, spec in DEFAULT_PRESETS.items()}
    chosen.update(parse_preset(text) for text in overrides)
    return chosen
