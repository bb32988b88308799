"""Where a result came from: the command, the date, the commit and the
machine, written into every result file, so a number on the results page
can name its run (``ponder bench report``)."""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ponder.server.hardware import fastest_cpu_dtype

ISA_LEVELS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2", "avx", "neon", "asimd")
"""CPU feature flags from the most to the least capable: the first one the
CPU has names its instruction set in a result."""


def command_line(argv: list[str] | None = None) -> str:
    """The command as a person would type it again: ``ponder bench ...``."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["ponder", *args])


def commit(repository: Path | None = None) -> str | None:
    """The checked-out commit, with ``-dirty`` when tracked files differ
    from it; None outside a git checkout."""
    where = repository or Path.cwd()
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=where,
                              capture_output=True, text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                 cwd=where, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("-dirty" if changed.strip() else "")


def machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The cores this process may use, the CPU and its widest vector
    instructions, the dtype ``--dtype auto`` picks on it, and the GPUs."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        text = ""
    flags: set[str] = set()
    model = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key.strip() == "model name" and model is None:
            model = value.strip()
    isa = next((level for level in ISA_LEVELS if level in flags), None)
    return {"cores": len(os.sched_getaffinity(0)), "logical_cpus": os.cpu_count(),
            "cpu": model, "isa": isa, "dtype": fastest_cpu_dtype(str(cpuinfo)), "gpu": gpus()}


def gpus() -> list[str] | None:
    """The NVIDIA GPUs ``nvidia-smi`` lists, None where there is none."""
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                capture_output=True, text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return [line.strip() for line in listed.splitlines() if line.strip()] or None


@functools.cache
def provenance() -> dict[str, Any]:
    """This process's run, as it was when first asked: a benchmark asks as
    it starts, so the commit is the code that ran, whatever changes on disk
    while it does."""
    return {"command": command_line(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit(), "machine": machine()}


def write_result(path: Path, report: dict[str, Any]) -> None:
    """``report`` as JSON at ``path``, with its provenance first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"provenance": provenance(), **report}, indent=2) + "\n")
