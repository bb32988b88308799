"""What the engine worker's heap holds per batch shape: vLLM's CPU linear
layers run oneDNN matmul primitives, one per (weight shape, M), M the tokens
in the step's batch. Each distinct M costs malloc'd memory that stays while
the primitive is cached (oneDNN's global cache: ONEDNN_PRIMITIVE_CACHE_CAPACITY,
1024 by default; and vLLM's per-layer cache of 32). Prints malloc's bytes in
use (mallinfo2) after M = 2..N on two layers of SmolLM2-135M's MLP shape.

    ONEDNN_PRIMITIVE_CACHE_CAPACITY=0 python onednn_cache_probe.py  # and without
"""

import ctypes
import json
import os

import torch
from vllm import _custom_ops as ops


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def in_use_mib(libc: ctypes.CDLL) -> float:
    info = libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 2**20


def main() -> None:
    torch.set_num_threads(1)
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    layers = [ops.create_onednn_mm(torch.randn(1536, 576).t(), 32) for _ in range(2)]
    for layer in layers:
        ops.onednn_mm(layer, torch.randn(1, 576), None)
    base = in_use_mib(libc)
    grown = {}
    for m in range(2, 193):
        for layer in layers:
            ops.onednn_mm(layer, torch.randn(m, 576), None)
        if m in (16, 32, 48, 64, 96, 128, 192):
            grown[m] = round(in_use_mib(libc) - base, 1)
    print(json.dumps({"ONEDNN_PRIMITIVE_CACHE_CAPACITY": os.environ.get(
        "ONEDNN_PRIMITIVE_CACHE_CAPACITY", "default (1024)"),
        "MiB in use after M = 2..N, by N": grown}))


if __name__ == "__main__":
    main()
