"""The GPU smoke test where there is no GPU: it says so in one line and
exits 0, having started nothing. (Where there is one, `ponder bench gpu`
runs it whole: docs/gpu.md.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ponder.bench.gpu import BEST_OF, SERVE_BENCH, find_gpu, kv_cache_tokens

DOCS = Path(__file__).parents[2] / "docs" / "gpu.md"


def test_no_nvidia_smi_means_no_gpu(tmp_path: Path) -> None:
    assert find_gpu(str(tmp_path / "nvidia-smi")) is None


def test_an_nvidia_smi_that_lists_no_gpu_means_no_gpu(tmp_path: Path) -> None:
    failing = tmp_path / "nvidia-smi"
    failing.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed: no NVIDIA driver' >&2\nexit 9\n")
    failing.chmod(0o755)
    assert find_gpu(str(failing)) is None


def test_the_first_gpu_is_named(tmp_path: Path) -> None:
    listing = tmp_path / "nvidia-smi"
    listing.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 81559 MiB'\n"
                       "echo 'NVIDIA H100 80GB HBM3, 81559 MiB'\n")
    listing.chmod(0o755)
    assert find_gpu(str(listing)) == "NVIDIA H100 80GB HBM3, 81559 MiB"


def test_without_a_gpu_it_stops_at_its_check_in_one_line(tmp_path: Path) -> None:
    """PATH without nvidia-smi: the check, then nothing else (no engine,
    no result file)."""
    finished = subprocess.run(
        [sys.executable, "-c", "from ponder.server.cli import main; main()", "bench", "gpu",
         "--output", str(tmp_path / "smoke.json")],
        check=False, capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "PATH": str(Path(sys.executable).parent)},
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.splitlines() == [
        "gpu-smoke: SKIPPED: no NVIDIA GPU here (nvidia-smi finds none); nothing was run"]
    assert not (tmp_path / "smoke.json").exists()


def test_the_kv_cache_vllm_reached_is_read_from_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("INFO [kv_cache_utils.py:1] GPU KV cache size: 2,895,168 tokens\n")
    assert kv_cache_tokens(log) == 2_895_168
    log.write_text("no such line")
    assert kv_cache_tokens(log) is None


def test_the_docs_state_the_sizes_the_script_runs() -> None:
    """The operator's page describes the workload the script really sends."""
    page = " ".join(DOCS.read_text().split())
    assert f"{SERVE_BENCH['prompts']} random prompts of {SERVE_BENCH['input_len']} tokens" in page
    assert f"{SERVE_BENCH['prompts']} x {SERVE_BENCH['output_len']} =" in page
    assert f"best-of-N@{BEST_OF['n']} runs on {BEST_OF['problems']} questions" in page
    assert f"{BEST_OF['problems']} questions x {BEST_OF['n']} samples" in page
