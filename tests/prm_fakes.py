"""Tiny randomly initialised checkpoints for the PRM engine tests.

No process reward model can be downloaded here, so the tests build models of
the real architectures with a few hundred thousand parameters: loading and
scoring then run through vLLM end to end, while the scores themselves mean
nothing (they only have to be probabilities, one per step).
"""

from __future__ import annotations

from pathlib import Path

STEP_TAG = "<extra_0>"
SEED = 1234


def build_tiny_qwen2(target: Path, architecture: str, tokenizer_dir: Path,
                     special_tokens: tuple[str, ...] = (STEP_TAG,),
                     chat_template: str | None = None) -> Path:
    """A Qwen2-architecture checkpoint in ``target``, with ``tokenizer_dir``'s
    tokenizer plus ``special_tokens`` (the step tag unless told), and
    ``chat_template`` when given.

    ``Qwen2ForProcessRewardModel`` gets vLLM's score head (``score.0`` a
    hidden x hidden linear, ReLU, ``score.2`` a hidden x 2 linear, both with
    bias, as in Qwen2.5-Math-PRM); ``Qwen2ForCausalLM`` gets tied embeddings.
    The head size is 64: vLLM's CPU attention rejects small ones like 16.
    """
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, Qwen2Config, Qwen2Model

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    tokenizer.add_special_tokens({"additional_special_tokens": list(special_tokens)})
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=2048,
        # Far above the usual 0.02, so the scores spread over (0, 1) and
        # differ between steps: a test can then tell a right reading of
        # the outputs from a wrong one.
        initializer_range=0.2,
        tie_word_embeddings=architecture == "Qwen2ForCausalLM",
        architectures=[architecture],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        dtype="float32",
    )
    torch.manual_seed(SEED)
    weights = {f"model.{name}": value for name, value in Qwen2Model(config).state_dict().items()}
    if architecture == "Qwen2ForProcessRewardModel":
        hidden = config.hidden_size
        weights |= {
            "score.0.weight": torch.randn(hidden, hidden) * 0.1,
            "score.0.bias": torch.zeros(hidden),
            "score.2.weight": torch.randn(2, hidden) * 0.1,
            "score.2.bias": torch.zeros(2),
        }
    target.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in weights.items()}, target / "model.safetensors")
    config.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
