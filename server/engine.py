"""The strategies' :class:`Generator`, implemented on vLLM's ``AsyncLLM``.

One engine per process, shared by every request, so all strategies of all
requests batch together in the engine's scheduler. We apply the chat
template ourselves and pass token ids, which lets a strategy continue a
partial assistant message (step-level search) and keeps prompt accounting
exact.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from vllm import AsyncEngineArgs, SamplingParams
from vllm.exceptions import VLLMClientError
from vllm.inputs import tokens_input
from vllm.outputs import RequestOutput
from vllm.sampling_params import RequestOutputKind
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.engine.exceptions import EngineDeadError

from ponder.server.errors import EngineUnavailable
from ponder.strategies.base import (
    FinishReason,
    Generation,
    Prompt,
    RequestRejected,
    Sample,
    SampleDelta,
    Sampling,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineOptions:
    model: str
    max_model_len: int | None
    kv_cache_gb: float
    dtype: str
    block_size: int | None
    enforce_eager: bool
    chunked_prefill: bool
    seed: int
    extra: dict[str, Any]


def _engine_args(options: EngineOptions) -> AsyncEngineArgs:
    return AsyncEngineArgs(
        model=options.model,
        max_model_len=options.max_model_len,
        kv_cache_memory_bytes=int(options.kv_cache_gb * 1024**3),
        dtype=options.dtype,
        block_size=options.block_size,
        enforce_eager=options.enforce_eager,
        enable_chunked_prefill=options.chunked_prefill,
        seed=options.seed,
        enable_prefix_caching=True,
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
    engine = AsyncLLM.from_engine_args(_engine_args(options))
    try:
        yield engine
    finally:
        engine.shutdown()


class VLLMGenerator:
    def __init__(self, engine: AsyncLLM) -> None:
        self.engine = engine
        self.tokenizer = engine.get_tokenizer()
        self.max_model_len: int = engine.model_config.max_model_len

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        ids = await self.render(prompt)
        params = self._params(ids, n, sampling, RequestOutputKind.FINAL_ONLY)
        final: RequestOutput | None = None
        async for output in self._run(ids, params):
            final = output
        if final is None:  # the engine ended the request without output
            raise EngineUnavailable("the engine returned no output")
        samples = [
            Sample(
                text=c.text,
                token_ids=c.token_ids,
                finish_reason=_finish_reason(c.finish_reason),
                cumulative_logprob=c.cumulative_logprob,
                top_logprobs=self._top_logprobs(c.logprobs, sampling),
            )
            for c in sorted(final.outputs, key=lambda c: c.index)
        ]
        return Generation(prompt_tokens=len(ids), samples=samples)

    async def stream(
        self, prompt: Prompt, n: int, sampling: Sampling
    ) -> AsyncIterator[SampleDelta]:
        ids = await self.render(prompt)
        params = self._params(ids, n, sampling, RequestOutputKind.DELTA)
        async for output in self._run(ids, params):
            for c in output.outputs:
                yield SampleDelta(
                    index=c.index,
                    text=c.text,
                    token_ids=c.token_ids,
                    prompt_tokens=len(ids),
                    finish_reason=_finish_reason(c.finish_reason) if c.finish_reason else None,
                    cumulative_logprob=c.cumulative_logprob,
                )

    def count_tokens(self, token_ids: Sequence[int], chars: int) -> int:
        """Smallest k whose decoded prefix covers ``chars`` characters: a
        binary search over decodes, log2(len) of them."""
        low, high = 0, len(token_ids)
        while low < high:
            mid = (low + high) // 2
            if len(self.tokenizer.decode(token_ids[:mid])) >= chars:
                high = mid
            else:
                low = mid + 1
        return low

    async def render(self, prompt: Prompt) -> list[int]:
        # Templating and tokenising a long prompt is CPU work: off the loop.
        ids = await asyncio.to_thread(self._render, prompt)
        if len(ids) >= self.max_model_len:
            raise RequestRejected(
                f"The prompt is {len(ids)} tokens long; this model's context is "
                f"{self.max_model_len} tokens, and at least one must be left to generate.",
                param="messages" if prompt.messages is not None else "prompt",
            )
        return ids

    def _render(self, prompt: Prompt) -> list[int]:
        if prompt.messages is not None:
            text = self.tokenizer.apply_chat_template(
                list(prompt.messages),
                add_generation_prompt=True,
                tokenize=False,
                **dict(prompt.template_kwargs),
            )
            add_special = False  # the template already has BOS and friends
        else:
            text, add_special = prompt.text or "", True
        return self.tokenizer.encode(text + prompt.continuation, add_special_tokens=add_special)

    def _params(
        self, ids: list[int], n: int, sampling: Sampling, kind: RequestOutputKind
    ) -> SamplingParams:
        room = self.max_model_len - len(ids)
        max_tokens = sampling.max_tokens if sampling.max_tokens is not None else room
        if max_tokens > room:
            raise RequestRejected(
                f"max_tokens is {max_tokens}, but the prompt takes {len(ids)} of this "
                f"model's {self.max_model_len} context tokens, leaving {room}.",
                param="max_tokens",
            )
        wants_logprobs = sampling.logprobs or sampling.top_logprobs > 0
        try:
            return SamplingParams(
                n=n,
                max_tokens=max_tokens,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                stop=list(sampling.stop) or None,
                include_stop_str_in_output=sampling.include_stop,
                seed=sampling.seed,
                logprobs=sampling.top_logprobs if wants_logprobs else None,
                output_kind=kind,
            )
        except VLLMClientError as error:
            raise RequestRejected(str(error), getattr(error, "parameter", None)) from error

    async def _run(self, ids: list[int], params: SamplingParams) -> AsyncIterator[RequestOutput]:
        """The engine's output stream. Closing it (a cancelled or abandoned
        consumer) closes vLLM's generator at once, which aborts the request
        and all of its children in the engine."""
        request_id = f"ponder-{uuid.uuid4().hex}"
        try:
            async with contextlib.aclosing(
                self.engine.generate(tokens_input(ids), params, request_id)
            ) as outputs:
                async for output in outputs:
                    yield output
        except EngineDeadError as error:
            raise EngineUnavailable("the inference engine has stopped") from error
        except VLLMClientError as error:
            raise RequestRejected(str(error), getattr(error, "parameter", None)) from error

    def _top_logprobs(self, logprobs: Any, sampling: Sampling) -> list[dict[str, float]] | None:
        if not sampling.top_logprobs or not logprobs:
            return None
        return [
            {entry.decoded_token or "": entry.logprob for entry in position.values()}
            for position in logprobs
        ]


def _finish_reason(reason: str | None) -> FinishReason:
    return "length" if reason == "length" else "abort" if reason == "abort" else "stop"
