"""The hidden-state probe as a file: what it reads, what model it was fit
on, and its weights, with the numpy forward pass that applies it.

A probe file is a small JSON document a person can read (the model
fingerprint, the layer, the pooling position, the fit's report) that names
a ``safetensors`` file beside it holding the weights: plain arrays, never a
pickle. A malformed file is a :class:`ProbeFileError` that names the field;
a probe fit on another model is refused, since hidden states mean nothing
to a probe of a different network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ponder.core.fingerprint import ModelIdentity, identity_from_json

FORMAT = "ponder-probe/1"
PROBE_KEY = "hidden_state_probe"
"""The policy file's field that names the probe file fit with it, beside it."""
POSITIONS = ("step-end",)
"""Where in each step the hidden state is read: ``step-end`` is the newline
token that follows the step (the model has read the whole step and not yet
begun the next)."""


class ProbeFileError(ValueError):
    """A probe file that cannot be used; the message names the field."""


@dataclass(frozen=True)
class ProbeWeights:
    """Standardise, then dense layers with ReLU between them, then a
    sigmoid: one layer is logistic regression, two a small network."""

    mean: np.ndarray
    scale: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]

    def __post_init__(self) -> None:
        width = self.mean.shape[0]
        if self.scale.shape != (width,):
            raise ProbeFileError(f"probe weights: 'scale' has shape {self.scale.shape}, "
                                 f"expected ({width},)")
        for index, (matrix, bias) in enumerate(self.layers):
            if matrix.ndim != 2 or matrix.shape[0] != width or bias.shape != (matrix.shape[1],):
                raise ProbeFileError(
                    f"probe weights: 'w{index}'/'b{index}' have shapes {matrix.shape}/"
                    f"{bias.shape}, which do not follow from a {width}-wide input")
            width = matrix.shape[1]
        if width != 1:
            raise ProbeFileError(f"probe weights: the last layer gives {width} outputs, not 1")

    @property
    def features(self) -> int:
        return int(self.mean.shape[0])

    def logit(self, features: np.ndarray) -> np.ndarray:
        hidden = (np.asarray(features, dtype=np.float32) - self.mean) / self.scale
        for index, (matrix, bias) in enumerate(self.layers):
            hidden = hidden @ matrix + bias
            if index < len(self.layers) - 1:
                hidden = np.maximum(hidden, 0.0)
        return hidden[:, 0]

    def probability(self, features: np.ndarray) -> np.ndarray:
        """One probability per row of ``features`` (rows x features)."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.logit(features), -60.0, 60.0)))

    def tensors(self) -> dict[str, np.ndarray]:
        named = {"mean": self.mean, "scale": self.scale}
        for index, (matrix, bias) in enumerate(self.layers):
            named[f"w{index}"], named[f"b{index}"] = matrix, bias
        return {name: np.ascontiguousarray(array, dtype=np.float32)
                for name, array in named.items()}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, np.ndarray]) -> ProbeWeights:
        for name in ("mean", "scale", "w0", "b0"):
            if name not in tensors:
                raise ProbeFileError(f"probe weights: tensor '{name}' is missing")
        layers = []
        while f"w{len(layers)}" in tensors:
            index = len(layers)
            if f"b{index}" not in tensors:
                raise ProbeFileError(f"probe weights: tensor 'b{index}' is missing")
            layers.append((tensors[f"w{index}"], tensors[f"b{index}"]))
        return cls(tensors["mean"], tensors["scale"], tuple(layers))


@dataclass(frozen=True)
class ProbeFile:
    model: ModelIdentity
    """The model it was fit on."""
    layer: int
    """Decoder layers the hidden state has passed (the model's own count for
    its last layer), read after the model's final norm."""
    position: str
    weights: ProbeWeights
    report: dict[str, Any] = field(default_factory=dict)
    """What the fit measured on its held-out split, and the command that made it."""

    def check_model(self, served: ModelIdentity) -> None:
        """Refuses a probe fit on another model (a ProbeFileError that says
        which)."""
        if not self.model.matches(served):
            raise ProbeFileError(
                f"probe field 'model.fingerprint': this probe was fit on {self.model.name!r} "
                f"({self.model.fingerprint}), not on the served model {served.name!r} "
                f"({served.fingerprint}); fit one for this model with `ponder calibrate "
                "--probe`")


def read_probe(path: Path) -> ProbeFile:
    """The probe described by the JSON file ``path`` and the weights file it names."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ProbeFileError(f"probe {path}: cannot be read as JSON ({error})") from error
    if not isinstance(data, dict):
        raise ProbeFileError(f"probe {path}: expected a JSON object")
    if data.get("format") != FORMAT:
        raise ProbeFileError(f"probe {path}: field 'format' must be {FORMAT!r}")
    try:
        model = identity_from_json(data.get("model"), "model")
    except ValueError as error:
        raise ProbeFileError(f"probe {path}: {error}") from error
    layer = _field(data, "layer", int, path)
    if layer < 1:
        raise ProbeFileError(f"probe {path}: field 'layer' must be at least 1")
    position = _field(data, "position", str, path)
    if position not in POSITIONS:
        raise ProbeFileError(f"probe {path}: field 'position' must be one of {POSITIONS}")
    weights_name = _field(data, "weights", str, path)
    weights_path = path.parent / weights_name
    if Path(weights_name).name != weights_name or weights_path.suffix != ".safetensors":
        raise ProbeFileError(f"probe {path}: field 'weights' must name a .safetensors file "
                             "beside it")
    try:
        from safetensors.numpy import load_file

        tensors = load_file(str(weights_path))
    except Exception as error:  # safetensors raises several kinds for a bad file
        raise ProbeFileError(f"probe {path}: field 'weights': {weights_path} cannot be read "
                             f"as safetensors ({error})") from error
    weights = ProbeWeights.from_tensors(tensors)
    report = data.get("report", {})
    if not isinstance(report, dict):
        raise ProbeFileError(f"probe {path}: field 'report' must be an object")
    return ProbeFile(model, layer, position, weights, report)


def write_probe(probe: ProbeFile, path: Path) -> None:
    """``path`` (JSON) and the weights beside it, as ``<stem>.safetensors``."""
    from safetensors.numpy import save_file

    weights_path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(probe.weights.tensors(), str(weights_path))
    path.write_text(json.dumps({
        "format": FORMAT, "model": probe.model.as_json(),
        "layer": probe.layer, "position": probe.position, "weights": weights_path.name,
        "features": probe.weights.features, "report": probe.report,
    }, indent=2) + "\n")


def _field(data: dict[str, Any], name: str, kind: type, path: Path) -> Any:
    if name not in data:
        raise ProbeFileError(f"probe {path}: field '{name}' is missing")
    value = data[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ProbeFileError(f"probe {path}: field '{name}' must be a {kind.__name__}")
    return value
