"""What the CPU we run on is good at; no engine import, so benchmarks and
tests can ask cheaply."""

from __future__ import annotations

from pathlib import Path

CPU_BLOCK_SIZE = 32
"""vLLM's CPU default is 128. Measured side by side (``ponder bench blocks``,
docs/results.md: KV block size on a CPU): 32 serves whole samples at least
as fast and lets a search's short steps share the prefix cache."""


CPU_KV_CACHE_GB = 2.0
"""The policy's KV cache on a CPU, where vLLM would otherwise reserve most of
the RAM (on a GPU the KV cache gets what --gpu-memory-utilization leaves)."""


CPU_RUNNING_SAMPLES = 32
"""On a CPU every sample in the batch slows every other: with 32 running, a
batch step takes about 2.4x what it does with 8 (bench/fairness.py)."""
REMOTE_RUNNING_SAMPLES = 256
"""A remote engine's hardware is not this machine's (on a GPU here the
engine's own max_num_seqs applies instead)."""


def fastest_cpu_dtype(cpuinfo: str = "/proc/cpuinfo") -> str:
    """bfloat16 where the CPU computes it natively (AVX512-BF16 or AMX);
    elsewhere float32, which on an AVX2-only CPU decodes fanned-out batches
    several times faster than emulated bfloat16."""
    try:
        flags = set(Path(cpuinfo).read_text().split())
    except OSError:
        return "float32"
    return "bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"
