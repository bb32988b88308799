"""Which model a measurement belongs to.

A calibrated policy, a fitted probe and ``ponder calibrate``'s records are
data about one model: its weights decide which answers come out and how
sure it is of them. They name the model by a fingerprint of what defines
it, its tokenizer and its architecture's configuration, so that a server
serving another model (or the same name over other weights) can tell, and
not apply another model's measurements.

The fingerprint reads what defines a model and leaves out what does not:
the dtype it is loaded in, where it was loaded from, library versions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ARCHITECTURE_KEYS = (
    "architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size",
    "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "hidden_act", "max_position_embeddings", "rope_theta", "rope_scaling", "rms_norm_eps",
    "layer_norm_eps", "tie_word_embeddings", "sliding_window", "num_experts",
    "num_experts_per_tok", "text_config",
)
"""What the weights' configuration says of the model itself. The rest of a
configuration (the dtype it is loaded in, where it was loaded from, the
defaults a library version adds) differs between copies of the same
weights."""
DIGITS = 16
"""Hex digits kept: 64 bits, plenty to tell models apart."""


@dataclass(frozen=True)
class ModelIdentity:
    """The model a measurement was made on: the name it was served as (for
    people) and its fingerprint (for the server's check)."""

    name: str
    fingerprint: str

    def matches(self, other: ModelIdentity) -> bool:
        """Same weights' configuration and tokenizer, whatever each is served as."""
        return self.fingerprint == other.fingerprint

    def as_json(self) -> dict[str, str]:
        return {"name": self.name, "fingerprint": self.fingerprint}


def model_fingerprint(config: Mapping[str, Any], vocab: Mapping[str, int],
                      chat_template: str | None = None) -> str:
    """A short stable digest of a model's architecture (from its
    configuration, :data:`ARCHITECTURE_KEYS`), its tokenizer's vocabulary
    and its chat template. Weights are not read (gigabytes on a GPU
    deployment): two fine-tunes of one base with one tokenizer and template
    look alike, which the template usually tells apart (a base model and
    its instruct version differ there)."""
    kept = {key: config[key] for key in ARCHITECTURE_KEYS if config.get(key) is not None}
    digest = hashlib.sha256()
    digest.update(json.dumps(kept, sort_keys=True, default=str).encode())
    digest.update(json.dumps(sorted(vocab.items())).encode())
    digest.update((chat_template or "").encode())
    return digest.hexdigest()[:DIGITS]


def identity_from_json(data: Any, where: str) -> ModelIdentity:
    """A ``{"name", "fingerprint"}`` object, or a ValueError that names
    the field at ``where``."""
    if not isinstance(data, dict):
        raise ValueError(f"field '{where}' must be an object with 'name' and 'fingerprint'")
    for key in ("name", "fingerprint"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ValueError(f"field '{where}.{key}' must be a non-empty string")
    return ModelIdentity(data["name"], data["fingerprint"])
