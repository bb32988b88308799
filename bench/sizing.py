"""``ponder bench sizing``: how many best-of-N@16 requests a GPU holds,
computed from KV-cache arithmetic, not measured (docs/gpu.md).

A token's KV cache takes 2 (keys and values) x layers x KV heads x head
size x 2 bytes (bfloat16). The KV cache gets what the engine's share of the
GPU (``--gpu-memory-utilization``, vLLM's default) leaves after the weights
and ``OVERHEAD_GIB`` for activations and CUDA graphs (vLLM measures the real
figure at start and logs the KV cache it got: the settings line and
``/v1/strategies`` show it in tokens). A best-of-N@16 request holds its
prompt once (the 16 samples share its blocks) and 16 samples at their full
length. The engine also decodes at most ``max_num_seqs`` sequences at once
(vLLM's default: 1024 on an H100 or larger, 256 on smaller GPUs), so at
most max_num_seqs / 16 such requests run together, whatever the KV cache
could hold.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ponder.bench.provenance import write_result
from ponder.server.engine_plan import GIB, share_for

SIZING = Path("bench/results/gpu/sizing.json")
"""The table docs/gpu.md shows (``ponder bench report`` writes it there)."""
UTILIZATION = 0.92
OVERHEAD_GIB = 3.0
PROMPT_TOKENS = 256
SAMPLES = 16
SAMPLE_TOKENS = 1024
BF16 = 2


@dataclass(frozen=True)
class Model:
    name: str
    params_b: float
    layers: int
    kv_heads: int
    head_dim: int

    @property
    def weights_gib(self) -> float:
        return self.params_b * 1e9 * BF16 / GIB

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * BF16


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float
    """What NVML reports as the total."""
    max_num_seqs: int
    """vLLM's default for its OpenAI server on this GPU (by its memory)."""


MODELS = [  # from each model's config.json
    Model("SmolLM2-135M (embedded)", 0.135, 30, 3, 64),
    Model("Qwen2.5-1.5B", 1.54, 28, 2, 128),
    Model("Qwen2.5-7B / Qwen2.5-Math-7B", 7.62, 28, 4, 128),
    Model("Llama-3.1-8B", 8.03, 32, 8, 128),
    Model("Qwen2.5-14B", 14.8, 48, 8, 128),
    Model("Qwen2.5-32B", 32.8, 64, 8, 128),
]
GPUS = [
    Gpu("L4 24 GB", 22.5, 256),
    Gpu("A100 40 GB", 40.0, 256),
    Gpu("H100 80 GB", 79.6, 1024),
    Gpu("H200 141 GB", 140.4, 1024),
]
PRM = Model("+ Qwen2.5-Math-PRM-7B in-process", 7.62, 28, 4, 128)
"""The policy's neighbour in the last rows, with ponder's default share
(its weights, the working room, --prm-kv-cache-gb 1)."""
PRM_KV_CACHE_GB = 1.0


def request_tokens() -> int:
    return PROMPT_TOKENS + SAMPLES * SAMPLE_TOKENS


def row(model: Model, gpu: Gpu, prm: Model | None = None) -> dict[str, Any] | None:
    """None: the weights do not fit in the share."""
    share = UTILIZATION
    if prm is not None:
        share -= share_for(prm.weights_gib * GIB, PRM_KV_CACHE_GB, gpu.memory_gib * GIB)
    kv_gib = share * gpu.memory_gib - model.weights_gib - OVERHEAD_GIB
    if kv_gib <= 0:
        return None
    kv_tokens = int(kv_gib * GIB / model.kv_bytes_per_token)
    by_memory = kv_tokens // request_tokens()
    return {
        "model": model.name + (f" {prm.name}" if prm else ""), "gpu": gpu.name,
        "policy_share": round(share, 2), "weights_gib": round(model.weights_gib, 1),
        "kv_bytes_per_token": model.kv_bytes_per_token, "kv_cache_gib": round(kv_gib, 1),
        "kv_cache_tokens": kv_tokens, "requests_by_kv_cache": by_memory,
        "requests_at_once": min(by_memory, gpu.max_num_seqs // SAMPLES),
    }


def table() -> dict[str, Any]:
    rows = [r for m in MODELS for g in GPUS if (r := row(m, g)) is not None]
    rows += [r for g in GPUS if (r := row(MODELS[2], g, PRM)) is not None]
    return {
        "computed_not_measured": True,
        "assumptions": {
            "gpu_memory_utilization": UTILIZATION, "overhead_gib": OVERHEAD_GIB,
            "kv_dtype": "bfloat16", "prompt_tokens": PROMPT_TOKENS, "samples": SAMPLES,
            "sample_tokens": SAMPLE_TOKENS, "request_tokens": request_tokens(),
        },
        "models": [asdict(m) for m in MODELS], "gpus": [asdict(g) for g in GPUS],
        "rows": rows,
    }


def markdown(report: dict[str, Any]) -> str:
    header = ("| model | GPU | KV bytes/token | KV cache | best-of-N@16 requests the KV cache "
              "holds | running at once |")
    lines = [header, "|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['model']} | {r['gpu']} | {r['kv_bytes_per_token']:,} | "
                     f"{r['kv_cache_gib']} GiB ({r['kv_cache_tokens']:,} tokens) | "
                     f"{r['requests_by_kv_cache']:,} | {r['requests_at_once']} |")
    return "\n".join(lines)


def write(output: Path) -> str:
    report = table()
    write_result(output, report)
    return markdown(report)
