"""The in-process engine PRMs end to end, on tiny random checkpoints of the
real architectures (no PRM can be downloaded here): a
``Qwen2ForProcessRewardModel`` read by STEP pooling, and a
``Qwen2ForCausalLM`` read as a Math-Shepherd-style token-logit PRM. Both
engines are opened through the registry, as the server opens them, and
their scores are checked against the same models run in transformers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, Qwen2ForCausalLM, Qwen2Model

from ponder.core.scoring import ProcessRewardModel
from ponder.prm.engine import single_token_id
from ponder.prm.pooling import qwen_text
from ponder.prm.registry import open_prms
from ponder.prm.token_logit import shepherd_text
from ponder.server.config import Settings
from ponder.server.embedded_model import embedded_model_dir
from ponder.server.engine_plan import GIB, Device, plan_engines, settings_in_force

from ..fakes import ScriptedGenerator, as_solutions
from ..prm_fakes import STEP_TAG, build_tiny_qwen2

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have?"
SOLUTIONS = [
    ["Tom starts with 3 apples.", "He buys 4 more, so 3 + 4 = 7.", "The answer is 7."],
    [],
    ["3 * 4 = 12", "The answer is 12."],
    ["7"],
]
BF16_TOLERANCE = 0.05  # the engine runs in bfloat16, the reference in float32
KV_CACHE_GB = 0.25
KV_CACHE_ENV = "VLLM_CPU_KVCACHE_SPACE"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("prm-models")
    base = embedded_model_dir()
    return {
        "qwen": build_tiny_qwen2(root / "qwen-prm", "Qwen2ForProcessRewardModel", base),
        "shepherd": build_tiny_qwen2(root / "shepherd", "Qwen2ForCausalLM", base),
    }


@pytest.fixture(scope="module")
def started() -> dict[str, Any]:
    """The engines open_prms reports as started, by name."""
    return {}


@pytest.fixture(scope="module")
async def prms(checkpoints: dict[str, Path], started: dict[str, Any]
               ) -> AsyncIterator[dict[str, ProcessRewardModel]]:
    """Opened as the server opens them, with the engine arguments its plan
    gives each PRM engine on a CPU."""
    settings = Settings(prm=[
        f"qwen=pooling:{checkpoints['qwen']}?tag={STEP_TAG}",
        f"shepherd=token-logit:{checkpoints['shepherd']}?good=+&bad=-&tag={STEP_TAG}",
    ], prm_kv_cache_gb=KV_CACHE_GB)
    plan = plan_engines(settings, Device("cpu"), str(embedded_model_dir()))
    with pytest.MonkeyPatch.context() as env:
        env.setenv(KV_CACHE_ENV, "3")  # as the policy engine leaves it for itself
        async with open_prms(settings.prm_specs, engine_args=plan.prms,
                             on_engine_started=started.__setitem__) as factories:
            yield {name: make(ScriptedGenerator.of("")) for name, make in factories.items()}


def test_each_engine_keeps_its_own_kv_cache_size(
    prms: dict[str, ProcessRewardModel], started: dict[str, Any]
) -> None:
    assert set(started) == {"qwen", "shepherd"}
    for name in ("qwen", "shepherd"):
        engine = prms[name].engine  # type: ignore[attr-defined]
        assert started[name] is engine
        in_force = settings_in_force(engine.vllm_config)
        assert in_force["kv_cache_memory_bytes"] == KV_CACHE_GB * GIB
        assert in_force["kv_cache_tokens"] > 0
        # A CPU engine runs eager, with no graphs to capture.
        assert in_force["enforce_eager"] is True and in_force["cudagraph_mode"] == "NONE"
    assert os.environ[KV_CACHE_ENV] == "3"  # and the policy engine's setting is back


@torch.no_grad()
def reference_prm(model_dir: Path, tokenizer: Any, ids: list[int]) -> list[float]:
    """Qwen2.5-Math-PRM's own recipe: the score head on the hidden states,
    softmax over the two labels, P(good) at each step tag."""
    weights = load_file(model_dir / "model.safetensors")
    hidden = Qwen2Model.from_pretrained(model_dir)(torch.tensor([ids])).last_hidden_state[0]
    inner = torch.relu(hidden @ weights["score.0.weight"].T + weights["score.0.bias"])
    logits = inner @ weights["score.2.weight"].T + weights["score.2.bias"]
    return logits.softmax(-1)[at_tags(tokenizer, ids), 1].tolist()


@torch.no_grad()
def reference_token_logit(model_dir: Path, tokenizer: Any, ids: list[int]) -> list[float]:
    """Math-Shepherd's recipe: the LM's logits of the good and bad tokens at
    each step tag, softmax, P(good)."""
    good, bad = (single_token_id(tokenizer, t, "token") for t in ("+", "-"))
    logits = Qwen2ForCausalLM.from_pretrained(model_dir)(torch.tensor([ids])).logits[0]
    return logits[at_tags(tokenizer, ids)][:, [good, bad]].softmax(-1)[:, 0].tolist()


def at_tags(tokenizer: Any, ids: list[int]) -> torch.Tensor:
    return torch.tensor(ids) == tokenizer.convert_tokens_to_ids(STEP_TAG)


def qwen_input(tokenizer: Any, steps: Sequence[str]) -> list[int]:
    text = qwen_text(tokenizer, QUESTION, steps, STEP_TAG)
    return tokenizer.encode(text, add_special_tokens=False)


def shepherd_input(tokenizer: Any, steps: Sequence[str]) -> list[int]:
    return tokenizer.encode(shepherd_text(tokenizer, QUESTION, steps, STEP_TAG))


@pytest.mark.parametrize(
    ("name", "encode", "reference"),
    [("qwen", qwen_input, reference_prm), ("shepherd", shepherd_input, reference_token_logit)],
    ids=["pooling", "token-logit"],
)
async def test_scores_each_step_like_the_model(
    prms: dict[str, ProcessRewardModel],
    checkpoints: dict[str, Path],
    name: str,
    encode: Callable[[Any, Sequence[str]], list[int]],
    reference: Callable[[Path, Any, list[int]], list[float]],
) -> None:
    """One probability per step for every candidate, the same as the model
    gives on the input ``encode`` builds, and that input's length as tokens."""
    tokenizer = AutoTokenizer.from_pretrained(checkpoints[name])
    scored = await prms[name].score(QUESTION, as_solutions(*SOLUTIONS))
    assert [len(s) for s in scored.scores] == [len(steps) for steps in SOLUTIONS]
    assert all(0.0 <= p <= 1.0 for s in scored.scores for p in s)
    inputs = [encode(tokenizer, steps) for steps in SOLUTIONS if steps]
    assert scored.tokens == sum(map(len, inputs)) > 0
    for got, ids in zip([s for s in scored.scores if s], inputs, strict=True):
        want = reference(checkpoints[name], tokenizer, ids)
        assert got == pytest.approx(want, abs=BF16_TOLERANCE)


def test_a_tag_must_be_one_token(checkpoints: dict[str, Path]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(checkpoints["shepherd"])
    with pytest.raises(ValueError, match="must be one token of this model's tokenizer; it is 2"):
        single_token_id(tokenizer, "ки", "step tag")
