"""ponder against its-hub (Red Hat's inference-time scaling library), on the
same questions: its-hub's self-consistency over vLLM's own OpenAI server,
then ponder's strategies over ponder on the same weights and dtype (both
servers take ``fastest_cpu_dtype``), one server at a time on one machine.

its-hub sends the n samples of a question as n chat requests and votes over
what its projection makes of each; it is given ponder's own answer
extractor as the projection, so the vote compares answers, not texts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from ponder.bench.accuracy import RunResult, RunSpec, measure
from ponder.bench.problems import Problem
from ponder.bench.servers import free_port, launched, ponder_command, vllm_command
from ponder.core.answers import answers_equivalent
from ponder.strategies.answers import extract_answer

ITS_HUB_VERSION = "1.2.0"


def _projection(text: str) -> str:
    return extract_answer(text) or text.strip()


async def its_hub_self_consistency(
    base_url: str, model: str, problems: Sequence[Problem], n: int, max_tokens: int,
    temperature: float, concurrency: int,
) -> RunResult:
    """its-hub's SelfConsistency with ``budget=n`` per question, as its
    README sets it up against an OpenAI-compatible server."""
    from its_hub.core.algorithms.self_consistency import SelfConsistency
    from its_hub.core.lms.openai_lm import OpenAICompatibleLanguageModel

    lm = OpenAICompatibleLanguageModel(
        endpoint=f"{base_url}/v1", api_key="none", model_name=model,
        max_tokens=max_tokens, temperature=temperature,
    )
    algorithm = SelfConsistency(consistency_space_projection_func=_projection)
    result = RunResult(f"its-hub-sc@{n}", {"peer": f"its_hub=={ITS_HUB_VERSION}",
                                           "algorithm": "SelfConsistency", "budget": n})
    gate = asyncio.Semaphore(concurrency)
    bar = tqdm(total=len(problems), desc=result.name, unit="problem", leave=False)

    async def one(index: int, problem: Problem) -> None:
        async with gate:
            asked = time.perf_counter()
            try:
                voted = await algorithm.ainfer(
                    lm, [{"role": "user", "content": problem.question}], budget=n,
                    return_response_only=False)
            except Exception:  # noqa: BLE001 - a peer's failure is counted, not fatal
                result.errors += 1
                bar.update()
                return
        answers = [_projection(r.get("content") or "") for r in voted.responses]
        chosen = answers[voted.selected_index]
        result.correct.append(answers_equivalent(chosen, problem.answer))
        result.by_problem[index] = result.correct[-1]
        result.any_correct.append(any(answers_equivalent(a, problem.answer) for a in answers))
        result.latency_s.append(time.perf_counter() - asked)
        usage = voted.usage
        result.tokens.append(usage.completion_tokens if usage else 0)
        result.prompt_tokens.append(usage.prompt_tokens if usage else 0)
        result.scoring_tokens.append(0)
        result.cached_tokens.append(0)
        bar.update()

    start = time.perf_counter()
    await asyncio.gather(*(one(i, p) for i, p in enumerate(problems)))
    result.wall_s = time.perf_counter() - start
    bar.close()
    await lm.close()
    return result


def compare_peers(
    model_dir: str, served_name: str, problems: Sequence[Problem], n: int,
    runs: Sequence[RunSpec], max_tokens: int, temperature: float, concurrency: int,
    kv_cache_gb: float,
) -> list[dict[str, Any]]:
    """its-hub over vLLM first, then ponder's ``runs``, each server alone."""
    port = free_port()
    command = vllm_command(port, model_dir, served_name, kv_cache_gb)
    with launched("vllm", command, port, served_name) as server:
        peer = asyncio.run(its_hub_self_consistency(
            server.base_url, served_name, problems, n, max_tokens, temperature, concurrency))
    print(peer.summary(), flush=True)
    port = free_port()
    command = ponder_command(port, model_dir, served_name, kv_cache_gb)
    with launched("ponder", command, port, served_name) as server:
        ours = asyncio.run(measure(server.base_url, served_name, runs, problems, concurrency,
                                   max_tokens))
    return [peer.summary(), *(r.summary() for r in ours)]
