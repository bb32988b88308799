"""A fleet on loopback: vLLM OpenAI servers, each pinned to its own cores,
``vllm-router`` in front of them, and ponder with ``--engine remote``
pointed at the router (or at one replica). Used by ``ponder bench scale``
and by tests/engine/test_fleet.py.

Two vLLM CPU servers on one machine both bind their OpenMP workers to the
same first cores by default and starve each other: each replica gets its
own ``VLLM_CPU_OMP_THREADS_BIND`` (a core list such as ``0`` or ``2-3``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ponder.bench.servers import RunningServer, free_port, launched, ponder_command, vllm_command

SERVED_NAME = "smollm2"
REPLICA_KV_CACHE_GB = 1.0


def replica_command(port: int, model_dir: str, kv_cache_gb: float = REPLICA_KV_CACHE_GB,
                    block_size: int | None = None) -> list[str]:
    """A vLLM server as a ponder fleet wants it: prefix-cache hits reported
    in usage (``--enable-prompt-tokens-details``), which ponder passes on."""
    command = [*vllm_command(port, model_dir, SERVED_NAME, kv_cache_gb),
               "--enable-prompt-tokens-details"]
    if block_size is not None:
        command += ["--block-size", str(block_size)]
    return command


def router_binary() -> str:
    """vllm-router's launcher, installed beside this interpreter (the
    ``test`` and ``bench`` extras pin it)."""
    beside = Path(sys.executable).parent / "vllm-router"
    found = str(beside) if beside.exists() else shutil.which("vllm-router")
    if found is None:
        raise RuntimeError("vllm-router is not installed: pip install vllm-router==0.1.17")
    return found


def router_command(port: int, workers: Sequence[str], policy: str) -> list[str]:
    """The router checking its replicas every second and taking one out at
    its first failed check (its retries stay on; ponder retries once more a
    call that produced nothing)."""
    return [router_binary(), "--host", "127.0.0.1", "--port", str(port),
            "--worker-urls", *workers, "--policy", policy, "--log-level", "warning",
            "--health-check-interval-secs", "1", "--health-failure-threshold", "1"]


def remote_ponder_command(port: int, model_dir: str, engine_url: str,
                          extra: Sequence[str] = ()) -> list[str]:
    return [*ponder_command(port, model_dir, SERVED_NAME, 1.0), "--engine", "remote",
            "--engine-url", engine_url, *extra]


FLEET_CORES = "PONDER_FLEET_CORES"
"""The cores the fleet's engines may use, one entry per engine, each a core
or a range as ``VLLM_CPU_OMP_THREADS_BIND`` takes it (``"0 1"``,
``"0-7 8-15"``)."""


def fleet_cores() -> list[str]:
    """The cores given in ``PONDER_FLEET_CORES``, else every core this
    process may run on (``taskset -c 0,1 ...`` sets those)."""
    given = os.environ.get(FLEET_CORES)
    if given:
        return given.split()
    return [str(core) for core in sorted(os.sched_getaffinity(0))]


@dataclass(frozen=True)
class Fleet:
    replicas: list[RunningServer]
    router: RunningServer | None

    @property
    def engine_url(self) -> str:
        """Where ponder sends its calls: the router, or the one replica."""
        return (self.router or self.replicas[0]).base_url


@contextlib.contextmanager
def replicas(model_dir: str, cores: Sequence[str], kv_cache_gb: float = REPLICA_KV_CACHE_GB,
             block_size: int | None = None,
             env: dict[str, str] | None = None) -> Iterator[list[RunningServer]]:
    """One vLLM server per entry of ``cores``, each bound to those cores."""
    with contextlib.ExitStack() as stack:
        running = []
        for index, core in enumerate(cores):
            port = free_port()
            running.append(stack.enter_context(launched(
                f"vllm-{index}", replica_command(port, model_dir, kv_cache_gb, block_size),
                port, SERVED_NAME, env={**(env or {}), "VLLM_CPU_OMP_THREADS_BIND": core},
            )))
        yield running


@contextlib.contextmanager
def routed(workers: Sequence[RunningServer], policy: str) -> Iterator[RunningServer]:
    port = free_port()
    command = router_command(port, [w.base_url for w in workers], policy)
    with launched(f"vllm-router-{policy}", command, port, SERVED_NAME, timeout=120) as router:
        yield router


@contextlib.contextmanager
def remote_ponder(model_dir: str, engine_url: str,
                  extra: Sequence[str] = ()) -> Iterator[RunningServer]:
    port = free_port()
    command = remote_ponder_command(port, model_dir, engine_url, extra)
    with launched("ponder-remote", command, port, SERVED_NAME) as server:
        yield server
