"""The calibrated policy file, read and checked once at start-up.

A policy is plain JSON a person can read (issue 23): difficulty bins, the
strategy chosen per bin and budget with the measurement behind it, and the
combined verifiers' weights. A malformed file must stop the server at once
with the field named, not fail on the first request.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean
from typing import Any

SIGNALS = ("agreement", "confidence", "checker", "length")
"""What the probe's samples say about a question, each in [0, 1]: see
:func:`probe_signals`."""
LENGTH_SCALE = 256
"""Tokens that count as a long answer (``length`` 1.0): hard questions draw
long, wandering samples."""
TRACE_SCALE = 10.0
"""DeepConf's trace confidence (nats, on a scale of its own) is mapped to
[0, 1] as ``1 - exp(-c / TRACE_SCALE)``; a fit's weights absorb the scale."""
_CHOICE = re.compile(r"[a-z_]+@[1-9][0-9]*")


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Bin:
    upper: float
    """The highest difficulty estimate in the bin (bins ascend)."""
    choices: dict[int, str]
    """Budget (samples) to the strategy chosen for it, such as ``best_of_n@8``."""

    def choice_for(self, budget: int) -> str | None:
        """The choice made for the largest budget that ``budget`` covers
        (None when it covers none: then only the probe fits)."""
        covered = [b for b in self.choices if b <= budget]
        return self.choices[max(covered)] if covered else None


@dataclass(frozen=True)
class Probe:
    samples: int
    """Whole samples the probe draws first."""
    answer_below: float
    """Difficulty under which the probe's vote is the answer."""


@dataclass(frozen=True)
class Policy:
    source: str
    probe: Probe
    difficulty: dict[str, float]
    """Logistic weights over :data:`SIGNALS` (and ``bias``) for the chance
    that the probe's majority answer is right; difficulty is one minus it."""
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


def probe_signals(answers: Sequence[str | None], parts: Sequence[Mapping[str, float]],
                  tokens: Sequence[int], same: Callable[[str, str], bool]) -> dict[str, float]:
    """The difficulty signals of a probe's samples: ``agreement``, the share
    of samples with the most common answer (by ``same``, so ``0.5`` and
    ``1/2`` agree); ``confidence``, their mean trace confidence part;
    ``checker``, their mean step-checker part (0.5, undecided, without a
    checker); ``length``, their mean length over :data:`LENGTH_SCALE`.
    ``parts`` are each sample's verifier parts as the combined scorer
    reports them."""
    groups: list[list[str]] = []
    for answer in answers:
        if answer is None:
            continue
        group = next((g for g in groups if same(g[0], answer)), None)
        if group is None:
            groups.append([answer])
        else:
            group.append(answer)
    count = max(len(answers), 1)
    return {
        "agreement": max((len(g) for g in groups), default=0) / count,
        "confidence": fmean(p.get("trace-confidence", 0.0) for p in parts) if parts else 0.0,
        "checker": fmean(p.get("step-checker", 0.5) for p in parts) if parts else 0.5,
        "length": min(1.0, fmean(tokens) / LENGTH_SCALE) if tokens else 0.0,
    }


def trace_part(confidence: float) -> float:
    """A DeepConf trace confidence mapped to [0, 1] (:data:`TRACE_SCALE`)."""
    return 1.0 - math.exp(-max(confidence, 0.0) / TRACE_SCALE)


def load_policy(path: Path) -> Policy:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PolicyError(f"policy {path}: cannot be read as JSON ({error})") from error
    return parse_policy(data, str(path))


def parse_policy(data: Any, source: str) -> Policy:
    """A PolicyError names the first field that is missing or of the wrong
    kind, as ``bins[1].choices``."""
    if not isinstance(data, dict):
        raise PolicyError(f"policy {source}: expected a JSON object")
    bins_data = _field(data, "bins", list, source)
    if not bins_data:
        raise PolicyError(f"policy {source}: field 'bins' must list at least one bin")
    bins = []
    for index, raw in enumerate(bins_data):
        where = f"bins[{index}]"
        if not isinstance(raw, dict):
            raise PolicyError(f"policy {source}: field '{where}' must be an object")
        upper = _field(raw, "upper", (int, float), source, where)
        choices = _field(raw, "choices", dict, source, where)
        parsed: dict[int, str] = {}
        for budget, strategy in choices.items():
            if not str(budget).isdigit() or not isinstance(strategy, str) \
                    or not _CHOICE.fullmatch(strategy):
                raise PolicyError(f"policy {source}: field '{where}.choices.{budget}' must map "
                                  "a budget in samples to a strategy and size, as best_of_n@8")
            parsed[int(budget)] = strategy
        if bins and float(upper) <= bins[-1].upper:
            raise PolicyError(f"policy {source}: field '{where}.upper' must exceed the "
                              "previous bin's")
        bins.append(Bin(float(upper), parsed))
    verifiers = _field(data, "verifiers", dict, source)
    weights = {name: _weights(raw, f"verifiers.{name}", source) for name, raw in verifiers.items()}
    probe_data = _field(data, "probe", dict, source)
    probe = Probe(int(_field(probe_data, "samples", int, source, "probe")),
                  float(_field(probe_data, "answer_below", (int, float), source, "probe")))
    if probe.samples < 1:
        raise PolicyError(f"policy {source}: field 'probe.samples' must be at least 1")
    difficulty = _weights(_field(data, "difficulty", dict, source), "difficulty", source)
    unknown = sorted(set(difficulty) - {"bias", *SIGNALS})
    if unknown:
        raise PolicyError(f"policy {source}: field 'difficulty.{unknown[0]}' is not a probe "
                          f"signal (use {', '.join(SIGNALS)} and bias)")
    return Policy(str(data.get("source", source)), probe, difficulty, tuple(bins), weights)


def _weights(raw: Any, where: str, source: str) -> dict[str, float]:
    if not isinstance(raw, dict) or not all(
            isinstance(w, (int, float)) and not isinstance(w, bool) for w in raw.values()):
        raise PolicyError(f"policy {source}: field '{where}' must map names to numeric weights")
    return {k: float(w) for k, w in raw.items()}


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
