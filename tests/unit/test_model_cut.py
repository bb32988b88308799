"""The model cut after L layers, which the probe's pooling engine serves:
its last hidden state is the whole model's hidden state after layer L
through the final norm (what the fit reads), it is written once, and new
weights at the same path are cut again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from ponder.prm.model_cut import cut_model


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                         num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=64, tie_word_embeddings=False)
    directory = tmp_path_factory.mktemp("whole")
    LlamaForCausalLM(config).save_pretrained(directory, safe_serialization=True)
    (directory / "tokenizer.json").write_text("{}")
    return directory


def test_the_cut_model_gives_the_normed_hidden_state_after_its_layer(whole: Path,
                                                                      tmp_path: Path) -> None:
    cut = cut_model(whole, 2, tmp_path)
    assert json.loads((cut / "config.json").read_text())["num_hidden_layers"] == 2
    with safe_open(str(cut / "model.safetensors"), framework="pt") as weights:
        names = set(weights.keys())
    assert {"model.layers.1.mlp.up_proj.weight", "model.norm.weight",
            "model.embed_tokens.weight", "lm_head.weight"} <= names
    assert not any(".layers.2." in name or ".layers.3." in name for name in names)
    assert (cut / "tokenizer.json").is_symlink()

    ids = torch.tensor([[3, 14, 15, 9, 26]])
    with torch.inference_mode():
        full = AutoModelForCausalLM.from_pretrained(whole)
        expected = full.model.norm(full(ids, output_hidden_states=True).hidden_states[2])
        served = AutoModelForCausalLM.from_pretrained(cut).model(ids).last_hidden_state
    torch.testing.assert_close(served, expected)


def test_the_cut_is_written_once_and_again_for_new_weights(whole: Path, tmp_path: Path) -> None:
    first = cut_model(whole, 1, tmp_path)
    written = (first / "model.safetensors").stat().st_mtime_ns
    assert cut_model(whole, 1, tmp_path) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == written
    (whole / "model.safetensors").touch()  # other weights, same path
    assert cut_model(whole, 1, tmp_path) != first


def test_prepare_model_prints_the_model_a_probe_server_serves(
        whole: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from ponder.core.fingerprint import ModelIdentity
    from ponder.prm.probe_file import ProbeFile, ProbeWeights, write_probe
    from ponder.server.cli import main

    monkeypatch.setenv("PONDER_CACHE_DIR", str(tmp_path / "cache"))
    weights = ProbeWeights(np.zeros(16, np.float32), np.ones(16, np.float32),
                           ((np.zeros((16, 1), np.float32), np.zeros(1, np.float32)),))
    for layer in (2, 4):
        write_probe(ProbeFile(ModelIdentity("tiny", "0" * 16), layer, "step-end", weights,
                              {"command": "test"}), tmp_path / f"probe-{layer}.json")
        main(["prepare-model", "--model", str(whole),
              "--probe", str(tmp_path / f"probe-{layer}.json")])
        printed = Path(capsys.readouterr().out.strip())
        if layer == 4:  # the last layer: the model itself
            assert printed == whole
        else:
            assert printed.parent == tmp_path / "cache" / "probe-models"
            assert json.loads((printed / "config.json").read_text())["num_hidden_layers"] == 2
