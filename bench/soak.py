"""Soak: a long run of mixed traffic against one server, watching for leaks.

Clients send every strategy, streaming and not, to both endpoints; some
leave early (a stream closed after a few chunks, a request abandoned
mid-generation); some send bad requests. Every ``interval`` seconds the
server's process tree is sampled: each process's RSS and open file
descriptors, the API process's asyncio tasks and requests in flight (from
/metrics), and the engine's KV-cache use. The API process's and the engine
worker's RSS are split by kind of mapping (``_memory_parts``), so growth
can be told apart: the KV cache (one big tensor, whose pages grow resident
as blocks are first used, if the allocator did not touch them at start),
the heap, other anonymous memory (allocator caches, arenas) and files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil

from ponder.bench.problems import generated

MIB = 1024 * 1024


@dataclass
class Tally:
    by_kind: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)


def _chat(model: str, question: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": question}], **extra}


SEARCH = {"prm": "step-checker", "max_steps": 3, "step_delimiter": "\n"}


def _requests(model: str) -> dict[str, Callable[[str], dict[str, Any]]]:
    """What a client may send, by kind: every strategy, each way."""
    return {
        "none": lambda q: _chat(model, q, max_tokens=64),
        "cot": lambda q: _chat(model, q, max_tokens=96, strategy="cot", temperature=0.7),
        "sc": lambda q: _chat(model, q, max_tokens=96, temperature=0.8,
                              strategy={"name": "self_consistency", "n": 6}),
        "sc-early": lambda q: _chat(model, q, max_tokens=96, temperature=0.8, strategy={
            "name": "self_consistency", "n": 8, "early_stop": True, "prompt": "direct"}),
        "bon-checker": lambda q: _chat(model, q, max_tokens=96, temperature=0.8, strategy={
            "name": "best_of_n", "n": 4, "prm": "step-checker"}),
        "bon-confidence": lambda q: _chat(model, q, max_tokens=96, temperature=0.8, strategy={
            "name": "best_of_n", "n": 4, "prm": "mean-logprob", "weighted_vote": True}),
        "bon-self-judge": lambda q: _chat(model, q, max_tokens=48, temperature=0.8, strategy={
            "name": "best_of_n", "n": 2, "prm": "self-judge"}),
        "budget": lambda q: _chat(model, q, max_tokens=200, temperature=0.8, budget={
            "max_tokens": 120}, strategy={"name": "self_consistency", "n": 4}),
        "completion": lambda q: {"model": model, "prompt": q, "max_tokens": 48,
                                 "strategy": "none"},
        "beam-search": lambda q: _chat(model, q, max_tokens=96, temperature=0.8, strategy={
            "name": "beam_search", "beam_width": 2, "expand": 2, **SEARCH}),
        "dvts": lambda q: _chat(model, q, max_tokens=96, temperature=0.8, strategy={
            "name": "dvts", "n": 4, "expand": 2, **SEARCH}),
        "auto": lambda q: _chat(model, q, max_tokens=96, temperature=0.8,
                                strategy={"name": "auto", "n": 8}),
    }


BAD_REQUESTS: list[tuple[str, bytes]] = [
    ("bad-json", b'{"model": '),
    ("bad-strategy", b'{"model": "M", "messages": [{"role": "user", "content": "hi"}], '
                     b'"strategy": "telepathy"}'),
    ("lone-surrogate", b'{"model": "M", "messages": [{"role": "user", "content": "a\\ud800"}]}'),
    ("too-long", json.dumps({"model": "M", "messages": [
        {"role": "user", "content": "word " * 20000}]}).encode()),
    ("n-over-cap", b'{"model": "M", "messages": [{"role": "user", "content": "hi"}], "n": 999}'),
]


async def _client(client: httpx.AsyncClient, model: str, rng: random.Random, stop_at: float,
                  tally: Tally) -> None:
    questions = [p.question for p in generated("one-op", 200, seed=rng.randrange(1 << 30))]
    kinds = _requests(model)
    while time.monotonic() < stop_at:
        roll = rng.random()
        if roll < 0.08:
            name, body = rng.choice(BAD_REQUESTS)
            await _send(tally, f"bad:{name}", client.post(
                "/v1/chat/completions", content=body.replace(b'"M"', f'"{model}"'.encode()),
                headers={"content-type": "application/json"}))
            continue
        kind = rng.choice(list(kinds))
        body = kinds[kind](rng.choice(questions))
        path = "/v1/completions" if kind == "completion" else "/v1/chat/completions"
        if roll < 0.18:
            await _leave_early(client, path, {**body, "stream": True}, rng, tally, kind)
        elif roll < 0.25:
            await _abandon(client, path, body, rng, tally, kind)
        elif roll < 0.6:
            await _send(tally, f"{kind}:stream", _stream(client, path, body))
        else:
            await _send(tally, kind, client.post(path, json=body))


async def _send(tally: Tally, kind: str, call: Awaitable[httpx.Response | int]) -> None:
    tally.by_kind[kind] += 1
    try:
        outcome = await call
    except httpx.HTTPError as error:
        tally.statuses["transport-error"] += 1
        tally.server_errors.append(f"{kind}: {error!r}")
        return
    status = outcome if isinstance(outcome, int) else outcome.status_code
    tally.statuses[str(status)] += 1
    if status >= 500:
        text = "" if isinstance(outcome, int) else outcome.text[:200]
        tally.server_errors.append(f"{kind}: {status} {text}")


async def _stream(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> int:
    """A whole stream; an error chunk counts as its status."""
    async with client.stream("POST", path, json={**body, "stream": True}) as response:
        status = response.status_code
        async for line in response.aiter_lines():
            if line.startswith("data: {\"error\""):
                status = 500  # a failure after the 200: no bad request ends this way
    return status


async def _leave_early(client: httpx.AsyncClient, path: str, body: dict[str, Any],
                       rng: random.Random, tally: Tally, kind: str) -> None:
    tally.by_kind[f"{kind}:left-stream"] += 1
    async with client.stream("POST", path, json=body) as response:
        lines = 0
        async for _ in response.aiter_lines():
            lines += 1
            if lines >= rng.randint(2, 12):
                break
    tally.statuses["left"] += 1


async def _abandon(client: httpx.AsyncClient, path: str, body: dict[str, Any],
                   rng: random.Random, tally: Tally, kind: str) -> None:
    tally.by_kind[f"{kind}:abandoned"] += 1
    task = asyncio.ensure_future(client.post(path, json=body))
    await asyncio.sleep(rng.uniform(0.2, 2.0))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    tally.statuses["left"] += 1


def _role(process: psutil.Process) -> str:
    title = " ".join(process.cmdline())
    for role in ("EngineCore", "Worker"):
        if f"VLLM::{role}" in title:
            return role
    return "api" if "ponder" in title else process.name()


ARENA_BYTES = 64 * MIB  # glibc's HEAP_MAX_SIZE on 64 bits: one thread arena's reservation


def _memory_parts(pid: int) -> dict[str, float]:
    """The process's RSS by kind of mapping, in MiB: its largest anonymous
    mapping (in the engine worker on a CPU, the KV cache: one tensor), the
    malloc heap (the main arena, grown by brk), other anonymous memory
    (torch's and oneDNN's allocations, thread arenas) and file-backed pages
    (code, the model's weights); and the count of glibc thread arenas (an
    anonymous reservation of 64 MiB on a 64 MiB boundary), which tells
    arena growth from fragmentation of the main heap."""
    parts = {"largest_anonymous": 0.0, "heap": 0.0, "other_anonymous": 0.0, "files": 0.0,
             "heap_size": 0.0, "arenas": 0}
    mappings: list[tuple[str, int, int, int]] = []  # (kind, start, end, rss bytes)
    kind, start, end = "", 0, 0
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            header = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ (\d+)\s*(.*)$", line)
            if header:
                start, end = int(header.group(1), 16), int(header.group(2), 16)
                inode, name = header.group(3), header.group(4)
                kind = ("files" if inode != "0" else "heap" if name == "[heap]"
                        else "anonymous" if not name or name.startswith("[anon") else "other")
            elif line.startswith("Rss:"):
                mappings.append((kind, start, end, int(line.split()[1]) * 1024))
    anonymous = sorted((rss for kind, _, _, rss in mappings if kind == "anonymous"), reverse=True)
    if anonymous:
        parts["largest_anonymous"] = anonymous[0] / MIB
        parts["other_anonymous"] = sum(anonymous[1:]) / MIB
    parts["heap"] = sum(rss for kind, _, _, rss in mappings if kind == "heap") / MIB
    parts["heap_size"] = sum(end - start for kind, start, end, _ in mappings if kind == "heap") / MIB
    parts["files"] = sum(rss for kind, _, _, rss in mappings if kind == "files") / MIB
    parts["arenas"] = _arenas([(s, e) for kind, s, e, _ in mappings if kind == "anonymous"])
    return parts


def _arenas(spans: list[tuple[int, int]]) -> int:
    """Thread arenas among anonymous mappings: a 64 MiB-aligned start whose
    run of adjacent mappings (the used part, then the reserved rest) covers
    exactly 64 MiB."""
    count = 0
    for index, (start, end) in enumerate(spans):
        if start % ARENA_BYTES:
            continue
        reach = end
        for next_start, next_end in spans[index + 1:]:
            if next_start != reach or reach - start >= ARENA_BYTES:
                break
            reach = next_end
        count += reach - start == ARENA_BYTES
    return count


async def _sample(client: httpx.AsyncClient, server_pid: int, started: float) -> dict[str, Any]:
    root = psutil.Process(server_pid)
    processes = [root, *root.children(recursive=True)]
    per_role: dict[str, dict[str, float]] = {}
    for process in processes:
        with contextlib.suppress(psutil.Error):
            entry = per_role.setdefault(_role(process), {"rss_mib": 0.0, "fds": 0})
            entry["rss_mib"] += process.memory_info().rss / MIB
            entry["fds"] += process.num_fds()
            if _role(process) in ("Worker", "api"):
                for part, amount in _memory_parts(process.pid).items():
                    key = part if part == "arenas" else f"{part}_mib"
                    entry[key] = entry.get(key, 0.0) + amount
    metrics = (await client.get("/metrics")).text
    figures = {name: _metric(metrics, name) for name in (
        "ponder_asyncio_tasks", "ponder_requests_in_flight", "ponder_samples_running",
        "vllm:kv_cache_usage_perc")}
    return {"minute": round((time.monotonic() - started) / 60, 2),
            "tree_rss_mib": round(sum(e["rss_mib"] for e in per_role.values()), 1),
            "tree_fds": int(sum(e["fds"] for e in per_role.values())),
            "processes": {role: {k: round(v, 1) for k, v in entry.items()}
                          for role, entry in per_role.items()},
            **figures}


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


async def soak(base_url: str, model: str, server_pid: int, *, minutes: float, clients: int,
               interval_s: float, api_key: str | None = None, seed: int = 0,
               on_sample: Callable[[dict[str, Any]], None] = print) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    tally = Tally()
    rng = random.Random(seed)
    started = time.monotonic()
    stop_at = started + minutes * 60
    limits = httpx.Limits(max_connections=clients * 2 + 2)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits,
                                 timeout=httpx.Timeout(600)) as client:
        samples = [await _sample(client, server_pid, started)]
        on_sample(samples[-1])
        workers = [asyncio.create_task(_client(client, model, random.Random(rng.random()),
                                               stop_at, tally)) for _ in range(clients)]
        while time.monotonic() < stop_at:
            await asyncio.sleep(min(interval_s, max(0.0, stop_at - time.monotonic())))
            samples.append(await _sample(client, server_pid, started))
            on_sample(samples[-1])
        await asyncio.gather(*workers)
        await asyncio.sleep(interval_s)  # idle: what is left once every request ended
        samples.append(await _sample(client, server_pid, started))
        on_sample(samples[-1])
    return {"minutes": minutes, "clients": clients, "requests": dict(tally.by_kind),
            "statuses": dict(tally.statuses), "server_errors": tally.server_errors,
            "samples": samples, "verdict": verdict(samples)}


def verdict(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Flat or not: the growth of each figure over the second half of the
    run (after warm-up), against its level."""
    half = samples[len(samples) // 2:]
    first, last = half[0], half[-1]

    def growth(read: Callable[[dict[str, Any]], float]) -> dict[str, float]:
        start, end = read(first), read(last)
        return {"second_half_start": round(start, 1), "end": round(end, 1),
                "growth": round(end - start, 1),
                "growth_pct": round(100 * (end - start) / start, 1) if start else 0.0}

    def part(role: str, name: str) -> Callable[[dict[str, Any]], float]:
        return lambda sample: sample["processes"].get(role, {}).get(name, 0.0)

    return {
        "tree_rss_mib": growth(lambda s: s["tree_rss_mib"]),
        **{f"{role.lower()}_{name}": growth(part(role, name))
           for role in ("api", "Worker", "EngineCore")
           for name in ("rss_mib", "largest_anonymous_mib", "heap_mib", "heap_size_mib",
                        "other_anonymous_mib", "files_mib", "arenas") if role != "EngineCore" or name == "rss_mib"},
        "tree_fds": growth(lambda s: s["tree_fds"]),
        "asyncio_tasks_idle": samples[-1]["ponder_asyncio_tasks"],
        "asyncio_tasks_before": samples[0]["ponder_asyncio_tasks"],
    }
