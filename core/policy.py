"""The calibrated policy file, read and checked once at start-up.

A policy is plain JSON a person can read (issue 23): difficulty bins, the
strategy chosen per bin and budget with the measurement behind it, and the
combined verifiers' weights. A malformed file must stop the server at once
with the field named, not fail on the first request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the field."""


@dataclass(frozen=True)
class Bin:
    upper: float
    """The highest difficulty estimate in the bin (bins ascend)."""
    choices: dict[int, str]
    """Budget (samples) to the strategy chosen for it, such as ``best_of_n@8``."""


@dataclass(frozen=True)
class Policy:
    source: str
    bins: tuple[Bin, ...]
    verifiers: dict[str, dict[str, float]]
    """Combination name (``combined``, ``reward-free``) to verifier weights
    (the key ``bias`` is the intercept)."""


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
            if not str(budget).isdigit() or not isinstance(strategy, str) or not strategy:
                raise PolicyError(f"policy {source}: field '{where}.choices.{budget}' must map "
                                  "a budget in samples to a strategy name")
            parsed[int(budget)] = strategy
        if bins and float(upper) <= bins[-1].upper:
            raise PolicyError(f"policy {source}: field '{where}.upper' must exceed the "
                              "previous bin's")
        bins.append(Bin(float(upper), parsed))
    verifiers = _field(data, "verifiers", dict, source)
    weights: dict[str, dict[str, float]] = {}
    for name, raw in verifiers.items():
        if not isinstance(raw, dict) or not all(
                isinstance(w, (int, float)) and not isinstance(w, bool) for w in raw.values()):
            raise PolicyError(f"policy {source}: field 'verifiers.{name}' must map verifier "
                              "names to numeric weights")
        weights[name] = {k: float(w) for k, w in raw.items()}
    return Policy(source, tuple(bins), weights)


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], source: str,
           where: str = "") -> Any:
    path = f"{where}.{name}" if where else name
    if name not in data:
        raise PolicyError(f"policy {source}: field '{path}' is missing")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise PolicyError(f"policy {source}: field '{path}' has the wrong type")
    return value
