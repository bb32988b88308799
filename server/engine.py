"""The strategies' :class:`Generator`, implemented on vLLM's ``AsyncLLM``.

One engine per process, shared by every request, so all strategies of all
requests batch together in the engine's scheduler. We apply the chat
template ourselves and pass token ids: a prompt is rendered once, and a
strategy continues a partial assistant message (step-level search) by
sending the prompt's ids followed by exactly the ids the engine generated,
which its prefix cache already holds. Prompt accounting is exact too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from vllm import AsyncEngineArgs, SamplingParams
from vllm.exceptions import VLLMClientError
from vllm.inputs import tokens_input
from vllm.outputs import RequestOutput
from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
from vllm.usage.usage_lib import UsageContext
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.engine.exceptions import EngineDeadError
from vllm.v1.metrics.stats import RequestStateStats

from ponder.core.generation import (
    Generation,
    Prompt,
    Sample,
    SampleDelta,
    Sampling,
    StopReason,
    TokenLogprob,
)
from ponder.server.engine_plan import EngineOptions
from ponder.server.errors import EngineUnavailable
from ponder.server.rendering import PromptRenderer, rejected
from ponder.server.request_context import RequestContext, current_request

logger = logging.getLogger(__name__)


def _engine_args(options: EngineOptions) -> AsyncEngineArgs:
    return AsyncEngineArgs(
        model=options.model,
        max_model_len=options.max_model_len,
        **options.memory.engine_args(),
        dtype=options.dtype,
        block_size=options.block_size,
        enforce_eager=options.enforce_eager,
        enable_chunked_prefill=options.chunked_prefill,
        seed=options.seed,
        enable_prefix_caching=True,
        # Small requests pass heavy ones in the engine's queue, and a KV-cache
        # shortage preempts the heaviest first (see request_context.priority).
        scheduling_policy="priority",
        **options.extra,
    )


# What vLLM's engine and worker processes allocate in /dev/shm for their
# message queues; containers get 64 MiB unless started with --shm-size.
SHARED_MEMORY_NEEDED = 512 * 1024**2


def _shared_memory_is_short(path: str = "/dev/shm") -> bool:
    try:
        return shutil.disk_usage(path).free < SHARED_MEMORY_NEEDED
    except OSError:
        return False  # no such mount: nothing to be short of


@asynccontextmanager
async def open_engine(options: EngineOptions) -> AsyncIterator[AsyncLLM]:
    if _shared_memory_is_short():
        # Rather than refuse to start (a plain `docker run` gives 64 MiB), run
        # the engine core in this process: slower, but it serves.
        logger.warning(
            "/dev/shm has less than %d MiB free: running the engine in-process, which is "
            "slower; give the container --shm-size=1g (or --ipc=host) for full speed.",
            SHARED_MEMORY_NEEDED // 1024**2,
        )
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    # The OpenAI server's usage context: its batch defaults for the device
    # (on an H100 1024 sequences and 8192 tokens a step, as `vllm serve`),
    # where the engine context would take 128 and 2048.
    engine = AsyncLLM.from_engine_args(
        _engine_args(options), usage_context=UsageContext.OPENAI_API_SERVER)
    try:
        yield engine
    finally:
        engine.shutdown()


class VLLMGenerator(PromptRenderer):
    def __init__(self, engine: AsyncLLM) -> None:
        super().__init__(engine.renderer, engine.model_config.max_model_len)
        self.engine = engine

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        ids = await self.prompt_ids(prompt)
        params = self._params(ids, n, sampling, RequestOutputKind.FINAL_ONLY)
        final: RequestOutput | None = None
        async for output in self._run(ids, params, sampling):
            final = output
        if final is None:  # the engine ended the request without output
            raise EngineUnavailable("the engine returned no output")
        samples = [
            Sample(
                text=c.text,
                token_ids=c.token_ids,
                stop_reason=stop_reason_of(c.finish_reason, c.stop_reason),
                stop_string=c.stop_reason if isinstance(c.stop_reason, str) else None,
                cumulative_logprob=c.cumulative_logprob,
                logprobs=_token_logprobs(c.token_ids, c.logprobs, sampling),
            )
            for c in sorted(final.outputs, key=lambda c: c.index)
        ]
        return Generation(len(ids), samples, final.num_cached_tokens or 0)

    async def stream(
        self, prompt: Prompt, n: int, sampling: Sampling
    ) -> AsyncIterator[SampleDelta]:
        ids = await self.prompt_ids(prompt)
        params = self._params(ids, n, sampling, RequestOutputKind.DELTA)
        async for output in self._run(ids, params, sampling):
            for c in output.outputs:
                yield SampleDelta(
                    index=c.index,
                    text=c.text,
                    token_ids=c.token_ids,
                    prompt_tokens=len(ids),
                    stop_reason=(
                        stop_reason_of(c.finish_reason, c.stop_reason) if c.finish_reason else None
                    ),
                    stop_string=c.stop_reason if isinstance(c.stop_reason, str) else None,
                    cumulative_logprob=c.cumulative_logprob,
                    logprobs=_token_logprobs(c.token_ids, c.logprobs, sampling),
                    cached_tokens=output.num_cached_tokens or 0,
                )

    def _params(
        self, ids: list[int], n: int, sampling: Sampling, kind: RequestOutputKind
    ) -> SamplingParams:
        max_tokens = self.max_tokens(ids, sampling.max_tokens)
        wants_logprobs = sampling.logprobs or sampling.top_logprobs > 0
        try:
            return SamplingParams(
                n=n,
                max_tokens=max_tokens,
                min_tokens=sampling.min_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k,
                min_p=sampling.min_p,
                presence_penalty=sampling.presence_penalty,
                frequency_penalty=sampling.frequency_penalty,
                repetition_penalty=sampling.repetition_penalty,
                logit_bias=dict(sampling.logit_bias) or None,
                ignore_eos=sampling.ignore_eos,
                stop=list(sampling.stop) or None,
                stop_token_ids=list(sampling.stop_token_ids) or None,
                include_stop_str_in_output=sampling.include_stop,
                skip_special_tokens=sampling.skip_special_tokens,
                seed=sampling.seed,
                logprobs=sampling.top_logprobs if wants_logprobs else None,
                structured_outputs=_structured_outputs(sampling),
                output_kind=kind,
            )
        except VLLMClientError as error:
            raise rejected(error, None) from error

    async def _run(
        self, ids: list[int], params: SamplingParams, sampling: Sampling
    ) -> AsyncIterator[RequestOutput]:
        """The engine's output stream. Closing it (a cancelled or abandoned
        consumer) closes vLLM's generator at once, which aborts the request
        and all of its children in the engine. The engine request carries
        the HTTP request's id (in vLLM's logs too) and priority."""
        context = current_request()
        request_id = f"{context.id if context else 'ponder'}-{uuid.uuid4().hex[:16]}"
        try:
            async with contextlib.aclosing(self.engine.generate(
                tokens_input(ids), params, request_id,
                priority=context.priority if context else 0,
            )) as outputs:
                async for output in outputs:
                    if context is not None:
                        _observe_timing(context, output)
                    yield output
        except EngineDeadError as error:
            raise EngineUnavailable("the inference engine has stopped") from error
        except VLLMClientError as error:
            # Refused as the engine takes the request in: what names no
            # parameter there is the grammar of a JSON constraint.
            raise rejected(error, json_field(sampling)) from error


def _structured_outputs(sampling: Sampling) -> StructuredOutputsParams | None:
    if sampling.json_output is None:
        return None
    if sampling.json_output.schema is None:
        return StructuredOutputsParams(json_object=True)
    return StructuredOutputsParams(json=sampling.json_output.schema)


def json_field(sampling: Sampling) -> str | None:
    return None if sampling.json_output is None else sampling.json_output.field


def _observe_timing(context: RequestContext, output: RequestOutput) -> None:
    """Note the request's first token and, when a call ends, how fast its
    tokens came, from the engine's own per-request timestamps (a call that
    returns whole samples shows no output before its end)."""
    stats = output.metrics
    if not isinstance(stats, RequestStateStats):
        return
    if stats.first_token_latency > 0:
        since = time.time() - (stats.arrival_time + stats.first_token_latency)
        context.saw_first_token(time.monotonic() - since)
    if output.finished and stats.num_generation_tokens > 1:
        context.decode_seconds_per_token.append(
            (stats.last_token_ts - stats.first_token_ts) / (stats.num_generation_tokens - 1)
        )


def stop_reason_of(finish_reason: str | None, stop_reason: int | str | None) -> StopReason:
    if finish_reason in ("length", "abort"):
        return finish_reason  # type: ignore[return-value]
    return "eos" if stop_reason is None else "stop"


def _token_logprobs(
    token_ids: Sequence[int], logprobs: Any, sampling: Sampling
) -> list[TokenLogprob] | None:
    """vLLM's per-position dicts (the sampled token plus the top-k) as one
    entry per generated token."""
    if not (sampling.logprobs or sampling.top_logprobs) or logprobs is None:
        return None
    entries = []
    for token_id, position in zip(token_ids, logprobs):
        chosen = position[token_id]
        ranked = sorted(
            (entry for entry in position.values()
             if entry.rank is not None and entry.rank <= sampling.top_logprobs),
            key=lambda entry: entry.rank,
        )
        top = tuple((entry.decoded_token or "", entry.logprob) for entry in ranked)
        entries.append(TokenLogprob(chosen.decoded_token or "", chosen.logprob, top))
    return entries
