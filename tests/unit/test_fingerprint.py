"""A model's fingerprint tells its weights' configuration and tokenizer
apart, and nothing else."""

from __future__ import annotations

import pytest

from ponder.core.fingerprint import ModelIdentity, identity_from_json, model_fingerprint

CONFIG = {"architectures": ["LlamaForCausalLM"], "hidden_size": 576, "num_hidden_layers": 30,
          "vocab_size": 49152, "torch_dtype": "bfloat16", "_name_or_path": "/a/path",
          "transformers_version": "5.17.0"}
VOCAB = {"<|endoftext|>": 0, "a": 1, "b": 2}


def test_copies_of_the_same_weights_match() -> None:
    moved = {**CONFIG, "_name_or_path": "/elsewhere", "torch_dtype": "float32",
             "transformers_version": "5.18.1", "output_attentions": False}
    assert model_fingerprint(CONFIG, VOCAB) == model_fingerprint(moved, dict(reversed(
        list(VOCAB.items()))))


@pytest.mark.parametrize(("config", "vocab", "template"), [
    ({**CONFIG, "num_hidden_layers": 24}, VOCAB, None),
    (CONFIG, {**VOCAB, "c": 3}, None),
    (CONFIG, {**VOCAB, "a": 2, "b": 1}, None),
    (CONFIG, VOCAB, "{{ messages }}"),
])
def test_another_model_does_not(config: dict, vocab: dict, template: str | None) -> None:
    assert model_fingerprint(config, vocab, template) != model_fingerprint(CONFIG, VOCAB)


def test_identities_match_by_fingerprint_not_name() -> None:
    fingerprint = model_fingerprint(CONFIG, VOCAB)
    assert ModelIdentity("smollm2", fingerprint).matches(ModelIdentity("other", fingerprint))
    assert not ModelIdentity("smollm2", fingerprint).matches(ModelIdentity("smollm2", "0" * 16))


@pytest.mark.parametrize(("data", "field"), [
    ("smollm2", "'model' must be an object"),
    ({"name": "smollm2"}, "'model.fingerprint'"),
    ({"name": "", "fingerprint": "ab"}, "'model.name'"),
])
def test_a_malformed_identity_names_the_field(data: object, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        identity_from_json(data, "model")
