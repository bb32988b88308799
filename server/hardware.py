"""What the CPU we run on is good at; no engine import, so benchmarks and
tests can ask cheaply."""

from __future__ import annotations

from pathlib import Path


CPU_BLOCK_SIZE = 32
"""vLLM's CPU default is 128. Measured side by side (``ponder bench blocks``,
README): 32 serves whole samples at least as fast and lets a search's short
steps share the prefix cache (86% hits against 47%)."""


def fastest_cpu_dtype(cpuinfo: str = "/proc/cpuinfo") -> str:
    """bfloat16 where the CPU computes it natively (AVX512-BF16 or AMX);
    elsewhere float32, which on an AVX2-only CPU ran fanned-out decoding 3.5x
    faster than emulated bfloat16 (78 vs 22 tokens/s, 8 streams, SmolLM2-135M)."""
    try:
        flags = set(Path(cpuinfo).read_text().split())
    except OSError:
        return "float32"
    return "bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"
