"""Starting the servers a benchmark compares, on loopback, one at a time."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from ponder.server.hardware import CPU_BLOCK_SIZE, fastest_cpu_dtype


@dataclass(frozen=True)
class RunningServer:
    name: str
    base_url: str
    model: str
    process: subprocess.Popen[bytes]
    log: Path
    """Its stdout and stderr, while it runs."""


def _first_ephemeral_port() -> int:
    ranges = Path("/proc/sys/net/ipv4/ip_local_port_range")
    return int(ranges.read_text().split()[0]) if ranges.exists() else 32768


def free_port() -> int:
    """A free port below the kernel's ephemeral range. A server binds its
    port only after its engine has started, a minute later; a port the
    kernel handed out (bind to 0) may by then be the engine's own socket or
    a client's, which is how a test once met "address already in use"."""
    for _ in range(200):
        port = random.randrange(20000, _first_ephemeral_port())
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """SIGTERM's default ends Python at once, without running ``finally``:
    the servers, each in a session of its own, would be left running (a
    vLLM server still starting keeps its port and its memory). Raising
    SystemExit instead unwinds the benchmark, which stops each of them."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.getsignal(signal.SIGTERM)

    def unwind(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def launched(name: str, command: list[str], port: int, model: str,
             env: dict[str, str] | None = None, timeout: float = 600) -> Iterator[RunningServer]:
    """Run ``command`` until its /health answers 200; stop it on exit, a
    SIGTERM to the benchmark included."""
    with _sigterm_unwinds(), tempfile.TemporaryDirectory() as folder, \
            (Path(folder) / "server.log").open("w+b") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}/health", process, log, timeout)
            yield RunningServer(name, f"http://127.0.0.1:{port}", model, process, Path(log.name))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)  # type: ignore[attr-defined]
            tail = log.read()[-3000:].decode(errors="replace")  # type: ignore[attr-defined]
            raise RuntimeError(f"{url} exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(1)
    raise RuntimeError(f"{url} did not become healthy in {timeout}s")


def ponder_command(port: int, model_dir: str, served_name: str, kv_cache_gb: float) -> list[str]:
    return [sys.executable, "-m", "ponder.server.cli", "serve", "--model", model_dir,
            "--served-model-name", served_name, "--port", str(port),
            "--kv-cache-gb", str(kv_cache_gb), "--log-level", "warning"]


def vllm_command(port: int, model_dir: str, served_name: str, kv_cache_gb: float) -> list[str]:
    """vLLM's own OpenAI server with the engine settings ponder uses on CPU
    (whole-prompt prefill and the block size included: see ``server/app.py``)."""
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
            "--served-model-name", served_name, "--port", str(port), "--host", "127.0.0.1",
            "--enforce-eager", "--seed", "0", "--no-enable-log-requests",
            "--block-size", str(CPU_BLOCK_SIZE),
            "--no-enable-chunked-prefill",
            "--disable-uvicorn-access-log", "--dtype", fastest_cpu_dtype(),
            "--kv-cache-memory-bytes", str(int(kv_cache_gb * 1024**3))]
