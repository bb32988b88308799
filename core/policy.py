"""The calibrated policy, and the one rule that turns it into a decision.

A policy is plain JSON a person can read: the model it was fit on,
difficulty bins, the strategy chosen per bin and budget with the
measurement behind it, and the combined verifiers' weights. It is data
about one model, so it names that model (:mod:`ponder.core.fingerprint`)
and a server serving another does not follow it. A malformed file stops
the server at once with the field named, not on the first request.

:func:`decide` is the rule ``auto`` follows, and the one calibration
replays to grade a policy on held-out questions: one function, so the
report grades the policy the server runs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any
from urllib.parse import parse_qsl

from ponder.core.answers import AnswerFormat, group_answers
from ponder.core.fingerprint import ModelIdentity, identity_from_json
from ponder.core.redaction import redact

SIGNALS = ("agreement", "confidence", "checker", "length")
"""What the probe's samples say about a question, each in [0, 1]: see
:func:`probe_signals`."""
LENGTH_SCALE = 256
"""Tokens that count as a long answer (``length`` 1.0): hard questions draw
long, wandering samples."""
TRACE_SCALE = 10.0
"""DeepConf's trace confidence (nats, on a scale of its own) is mapped to
[0, 1] as ``1 - exp(-c / TRACE_SCALE)``; a fit's weights absorb the scale."""
NEUTRAL_PROBE_SAMPLES = 4
"""The model-neutral rule's probe: enough samples to see them disagree."""
NEUTRAL_ESCALATION = "best_of_n"
"""What the model-neutral rule escalates to when the probe disagrees."""
_CHOICE = re.compile(r"(?P<strategy>[a-z_]+)@(?P<size>[1-9][0-9]*)(?:\?(?P<options>.+))?")


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Choosable:
    """What a decision needs to know of a strategy a policy may choose."""

    reuses_probe: bool = False
    """It draws whole samples as the probe does, so the probe's samples can
    count as its first ones."""
    draws_anew_with: frozenset[str] = frozenset()
    """Its options under which it draws samples its own way (the first to
    finish win, the worst are stopped partway): whole samples drawn before
    it cannot stand in for its own, so a choice with any of them draws
    afresh."""

    def reuses(self, options: Sequence[tuple[str, str]]) -> bool:
        return self.reuses_probe and not self.stops_early(options)

    def stops_early(self, options: Sequence[tuple[str, str]]) -> bool:
        return bool(self.draws_anew_with & {key for key, _ in options})


@dataclass(frozen=True)
class Choice:
    """A strategy at a size (samples, or samples per round for a search),
    as a policy and a calibration grid name it: ``best_of_n@8``, with the
    strategy's own options after ``?`` (``self_consistency@16?first=4``)."""

    strategy: str
    size: int
    options: tuple[tuple[str, str], ...] = ()
    reuses_probe: bool = False
    """It draws whole samples as the probe does, so the probe's samples
    count as its first ones (and cost nothing more)."""
    stops_early: bool = False
    """It stops samples before they end (the first to finish win, the worst
    are pruned, a chain exits once sure), so the samples it starts say
    little of what it spends: it costs what calibration measured, in whole
    samples' worth of tokens, and the budget a policy files it under is
    that measurement (a pruned best-of-32 may be the choice at 16)."""

    def cost(self, probe_size: int) -> int:
        """Samples a run costs after a probe of ``probe_size``."""
        return self.size if self.reuses_probe else self.size + probe_size

    def fits(self, budget: int, probe_size: int) -> bool:
        """Whether it may run at ``budget`` after the probe: by its cost in
        samples, or, for one that stops early, by the measured tokens that
        placed it (the caller's to check)."""
        return self.stops_early or self.cost(probe_size) <= budget

    def __str__(self) -> str:
        options = "&".join(f"{key}={value}" for key, value in self.options)
        return f"{self.strategy}@{self.size}" + (f"?{options}" if options else "")


def parse_choice(text: str, choosable: Mapping[str, Choosable]) -> Choice:
    """``text`` as a choice among the strategies of ``choosable``, with its
    options (``self_consistency@16?first=4``, ``best_of_n@16?prune_every=32&
    prune_keep=0.5``: the one place a policy's, a calibration grid's or
    ``auto``'s choice is read); a ValueError says what is wrong. Whether
    the options fit the strategy is the strategy's to say
    (:func:`ponder.strategies.registry.choice_config`)."""
    match = _CHOICE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a strategy and size, as best_of_n@8")
    strategy = match["strategy"]
    if strategy not in choosable:
        raise ValueError(f"{strategy!r} is not a strategy a policy can choose (it can choose "
                         f"{', '.join(sorted(choosable))})")
    try:
        options = tuple(parse_qsl(match["options"] or "", keep_blank_values=True,
                                  strict_parsing=True))
    except ValueError:
        raise ValueError(f"{text!r}: options go after '?' as name=value pairs joined by '&', "
                         "as self_consistency@16?first=4") from None
    keys = [key for key, _ in options]
    if len(set(keys)) < len(keys):
        raise ValueError(f"{text!r} names an option twice")
    return Choice(strategy, int(match["size"]), options, choosable[strategy].reuses(options),
                  choosable[strategy].stops_early(options))


@dataclass(frozen=True)
class Bin:
    upper: float
    """The highest difficulty estimate in the bin (bins ascend)."""
    choices: dict[int, Choice]
    """Budget (samples) to the strategy chosen for it."""

    def choice_within(self, budget: int, probe_size: int) -> Choice | None:
        """The choice made for the largest budget that ``budget`` covers and
        whose cost after the probe fits in it (None when none does: then
        only the probe fits). A choice that stops its samples early was
        filed under the budget its measured cost fits."""
        fitting = [b for b, choice in self.choices.items()
                   if b <= budget and choice.fits(budget, probe_size)]
        return self.choices[max(fitting)] if fitting else None


@dataclass(frozen=True)
class Probe:
    samples: int
    """Whole samples the probe draws first."""
    answer_below: float
    """Difficulty under which the probe's answer stands."""


@dataclass(frozen=True)
class Policy:
    source: str
    """How it was made (the calibrate command line, data by file name)."""
    model: ModelIdentity
    """The model it was fit on: it holds for that model only."""
    probe: Probe
    difficulty: dict[str, float]
    """Logistic weights over :data:`SIGNALS` (and ``bias``) for the chance
    that the probe's answer is right; difficulty is one minus it."""
    bins: tuple[Bin, ...]
    verifiers: dict[str, dict[str, float]]
    """Combination name (``combined``, ``reward-free``) to verifier weights
    (the key ``bias`` is the intercept)."""

    def difficulty_of(self, signals: Mapping[str, float]) -> float:
        logit = self.difficulty.get("bias", 0.0) + sum(
            weight * signals[name] for name, weight in self.difficulty.items() if name != "bias")
        return 1.0 - sigmoid(logit)

    def bin_of(self, difficulty: float) -> tuple[int, Bin]:
        """The first bin whose upper edge holds ``difficulty`` (the last bin
        holds anything above)."""
        for index, candidate in enumerate(self.bins):
            if difficulty <= candidate.upper:
                return index, candidate
        return len(self.bins) - 1, self.bins[-1]

    def choices(self) -> list[Choice]:
        return [choice for b in self.bins for choice in b.choices.values()]


@dataclass(frozen=True)
class Decision:
    """What ``auto`` does after its probe, and why."""

    choice: Choice | None
    """None: the probe's answer stands."""
    why: str
    difficulty: float | None = None
    """The policy's estimate (None under the model-neutral rule)."""
    bin: int | None = None


def decide(policy: Policy | None, signals: Mapping[str, float], budget: int,
           probe_size: int) -> Decision:
    """The one decision rule: the policy's choice for the question's
    difficulty bin at the request's budget (``budget`` samples, the probe's
    included), or the probe's answer when the question looks easy or
    nothing more fits. With no policy for the served model, the
    model-neutral rule: the probe's answer when all its samples agree,
    else best-of-N over the whole budget."""
    if policy is None:
        if signals["agreement"] >= 1.0:
            return Decision(None, "the probe's samples agree (no fitted policy for this model)")
        if budget <= probe_size:
            return Decision(None, f"the budget of {budget} is spent on the probe")
        return Decision(Choice(NEUTRAL_ESCALATION, budget, reuses_probe=True),
                        "the probe's samples disagree (no fitted policy for this model)")
    difficulty = policy.difficulty_of(signals)
    index, chosen_bin = policy.bin_of(difficulty)

    def decided(choice: Choice | None, why: str) -> Decision:
        return Decision(choice, why, difficulty, index)

    if difficulty < policy.probe.answer_below:
        return decided(None, f"below {policy.probe.answer_below}: the probe's answer is trusted")
    choice = chosen_bin.choice_within(budget, probe_size)
    if choice is None:
        return decided(None, f"the budget of {budget} covers no choice beyond the probe")
    if choice.reuses_probe and choice.size <= probe_size:
        return decided(None, f"the policy's choice ({choice}) is no more than the probe drew")
    return decided(choice, f"the policy's choice for this bin at a budget of {budget}")


def probe_signals(answers: Sequence[str | None], parts: Sequence[Mapping[str, float]],
                  tokens: Sequence[int], answer_format: AnswerFormat = "auto"
                  ) -> dict[str, float]:
    """The difficulty signals of a probe's samples: ``agreement``, the share
    of samples with the most common answer (grouped by the vote's own rule,
    :mod:`ponder.core.answers`); ``confidence``, their mean trace confidence
    part; ``checker``, their mean step-checker part (0.5, undecided, without
    a checker); ``length``, their mean length over :data:`LENGTH_SCALE`.
    ``parts`` are each sample's verifier parts as the combined scorer
    reports them."""
    count = max(len(answers), 1)
    return {
        "agreement": group_answers(answers, answer_format).largest() / count,
        "confidence": fmean(p.get("trace-confidence", 0.0) for p in parts) if parts else 0.0,
        "checker": fmean(p.get("step-checker", 0.5) for p in parts) if parts else 0.5,
        "length": min(1.0, fmean(tokens) / LENGTH_SCALE) if tokens else 0.0,
    }


def trace_part(confidence: float) -> float:
    """A DeepConf trace confidence mapped to [0, 1] (:data:`TRACE_SCALE`)."""
    return 1.0 - math.exp(-max(confidence, 0.0) / TRACE_SCALE)


def shown_source(source: str) -> str:
    """A policy's source as clients see it: files by their name, not by the
    path they had on the machine that fit it, and URLs without their user
    info or query values."""
    return " ".join(_file_name(word) for word in source.split(" "))


def _file_name(word: str) -> str:
    if "://" in word:
        return redact(word)
    return Path(word).name if "/" in word else word


def load_policy(path: Path, choosable: Mapping[str, Choosable]) -> Policy:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PolicyError(f"policy {path.name}: cannot be read as JSON ({error})") from error
    return parse_policy(data, path.name, choosable)


def parse_policy(data: Any, source: str, choosable: Mapping[str, Choosable]) -> Policy:
    """A PolicyError names the first field that is missing, of the wrong
    kind or out of range, as ``bins[1].choices``. ``choosable`` names the
    strategies a policy may choose."""
    if not isinstance(data, dict):
        raise PolicyError(f"policy {source}: expected a JSON object")
    try:
        model = identity_from_json(_field(data, "model", dict, source), "model")
    except ValueError as error:
        raise PolicyError(f"policy {source}: {error}") from error
    bins_data = _field(data, "bins", list, source)
    if not bins_data:
        raise PolicyError(f"policy {source}: field 'bins' must list at least one bin")
    bins: list[Bin] = []
    for index, raw in enumerate(bins_data):
        where = f"bins[{index}]"
        if not isinstance(raw, dict):
            raise PolicyError(f"policy {source}: field '{where}' must be an object")
        upper = _number(raw, "upper", source, where)
        choices: dict[int, Choice] = {}
        for budget, text in _field(raw, "choices", dict, source, where).items():
            if not str(budget).isdigit() or int(budget) < 1 or not isinstance(text, str):
                raise PolicyError(f"policy {source}: field '{where}.choices.{budget}' must map "
                                  "a budget in samples to a strategy and size, as best_of_n@8")
            try:
                choices[int(budget)] = parse_choice(text, choosable)
            except ValueError as error:
                raise PolicyError(f"policy {source}: field '{where}.choices.{budget}': "
                                  f"{error}") from error
        if bins and upper <= bins[-1].upper:
            raise PolicyError(f"policy {source}: field '{where}.upper' must exceed the "
                              "previous bin's")
        bins.append(Bin(upper, choices))
    verifiers = _field(data, "verifiers", dict, source)
    weights = {name: _weights(raw, f"verifiers.{name}", source) for name, raw in verifiers.items()}
    probe_data = _field(data, "probe", dict, source)
    probe = Probe(int(_field(probe_data, "samples", int, source, "probe")),
                  _number(probe_data, "answer_below", source, "probe"))
    if probe.samples < 1:
        raise PolicyError(f"policy {source}: field 'probe.samples' must be at least 1")
    difficulty = _weights(_field(data, "difficulty", dict, source), "difficulty", source)
    unknown = sorted(set(difficulty) - {"bias", *SIGNALS})
    if unknown:
        raise PolicyError(f"policy {source}: field 'difficulty.{unknown[0]}' is not a probe "
                          f"signal (use {', '.join(SIGNALS)} and bias)")
    return Policy(str(data.get("source", source)), model, probe, difficulty, tuple(bins),
                  weights)


def _weights(raw: Any, where: str, source: str) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise PolicyError(f"policy {source}: field '{where}' must map names to numeric weights")
    return {name: _number(raw, name, source, where) for name in raw}


def _number(data: dict[str, Any], name: str, source: str, where: str) -> float:
    """A finite number: a NaN weight would make every estimate NaN, and
    every comparison with it false."""
    value = _field(data, name, (int, float), source, where)
    if not math.isfinite(value):
        raise PolicyError(f"policy {source}: field '{where}.{name}' must be a finite number")
    return float(value)


def sigmoid(x: float) -> float:
    """Without overflow for large negative x: the one logistic the policy's
    difficulty and the combined verifiers share."""
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    z = math.exp(x)
    return z / (1 + z)


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], source: str,
           where: str = "") -> Any:
    path = f"{where}.{name}" if where else name
    if name not in data:
        raise PolicyError(f"policy {source}: field '{path}' is missing")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise PolicyError(f"policy {source}: field '{path}' has the wrong type")
    return value
