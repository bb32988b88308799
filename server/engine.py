"""The strategies' :class:`Generator`, implemented on vLLM's ``AsyncLLM``.

One engine per process, shared by every request, so all strategies of all
requests batch together in the engine's scheduler. We apply the chat
template ourselves and pass token ids: a prompt is rendered once, and a
strategy continues a partial assistant message (step-level search) by
sending the prompt's ids followed by exactly the ids the engine generated,
which its prefix cache already holds. Prompt accounting is exact too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

from jinja2 import TemplateError
from vllm import AsyncEngineArgs, SamplingParams
from vllm.exceptions import VLLMClientError
from vllm.inputs import tokens_input
from vllm.outputs import RequestOutput
from vllm.renderers import ChatParams
from vllm.sampling_params import RequestOutputKind, StructuredOutputsParams
from vllm.v1.engine.async_llm import AsyncLLM
from vllm.v1.engine.exceptions import EngineDeadError
from vllm.v1.metrics.stats import RequestStateStats

from ponder.core.generation import (
    Generation,
    Prompt,
    RequestRejected,
    Sample,
    SampleDelta,
    Sampling,
    StopReason,
    TokenLogprob,
)
from ponder.server.errors import EngineUnavailable
from ponder.server.request_context import RequestContext, current_request

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
        self.vocab_size: int = len(self.tokenizer)

    async def warm_up(self) -> None:
        """Render a conversation once, so the first request does not pay for
        what vLLM's renderer prepares on first use (seconds on a CPU)."""
        await self.render(Prompt(messages=({"role": "user", "content": "Hi"},)))

    async def generate(self, prompt: Prompt, n: int, sampling: Sampling) -> Generation:
        ids = await self._ids(prompt)
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
                stop_reason=_stop_reason(c.finish_reason, c.stop_reason),
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
        ids = await self._ids(prompt)
        params = self._params(ids, n, sampling, RequestOutputKind.DELTA)
        async for output in self._run(ids, params, sampling):
            for c in output.outputs:
                yield SampleDelta(
                    index=c.index,
                    text=c.text,
                    token_ids=c.token_ids,
                    prompt_tokens=len(ids),
                    stop_reason=(
                        _stop_reason(c.finish_reason, c.stop_reason) if c.finish_reason else None
                    ),
                    stop_string=c.stop_reason if isinstance(c.stop_reason, str) else None,
                    cumulative_logprob=c.cumulative_logprob,
                    logprobs=_token_logprobs(c.token_ids, c.logprobs, sampling),
                    cached_tokens=output.num_cached_tokens or 0,
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

    async def render(self, prompt: Prompt) -> Prompt:
        if prompt.token_ids is not None:
            return prompt
        # Templating and tokenising a long prompt is CPU work: off the loop.
        ids = await asyncio.to_thread(self.rendered_ids, prompt)
        if len(ids) >= self.max_model_len:
            raise RequestRejected(
                f"The prompt is {len(ids)} tokens long; this model's context is "
                f"{self.max_model_len} tokens, and at least one must be left to generate.",
                param="messages" if prompt.messages is not None else "prompt",
            )
        return replace(prompt, token_ids=tuple(ids))

    async def _ids(self, prompt: Prompt) -> list[int]:
        rendered = await self.render(prompt)
        assert rendered.token_ids is not None
        return [*rendered.token_ids, *rendered.continuation]

    def rendered_ids(self, prompt: Prompt) -> list[int]:
        """The prompt's token ids, however long."""
        if prompt.messages is None:
            return self.tokenize(prompt.text or "", add_special_tokens=True)
        # vLLM's own chat rendering, as its server does it: content given as
        # text parts is joined for templates that read strings (or passed as
        # parts to templates that iterate them), assistant tool calls and
        # tool results are shaped as templates expect, a template that
        # rejects the conversation is a client error.
        params = ChatParams(
            chat_template_kwargs={"add_generation_prompt": True, **dict(prompt.template_kwargs)}
        )
        try:
            _, rendered = self.engine.renderer.render_messages(list(prompt.messages), params)
        except VLLMClientError as error:
            raise _rejected(error, "messages") from error
        except TemplateError as error:  # the template's own raise_exception()
            raise RequestRejected(
                f"The messages do not fit this model's chat template: {error}", param="messages"
            ) from error
        return list(rendered["prompt_token_ids"])  # type: ignore[typeddict-item]

    def tokenize(self, text: str, add_special_tokens: bool) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=add_special_tokens)

    def detokenize(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(token_ids)

    def token_strings(self, token_ids: Sequence[int]) -> list[str]:
        return self.tokenizer.convert_ids_to_tokens(list(token_ids))

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
            raise _rejected(error, None) from error

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
            raise _rejected(error, _json_field(sampling)) from error


def _structured_outputs(sampling: Sampling) -> StructuredOutputsParams | None:
    if sampling.json_output is None:
        return None
    if sampling.json_output.schema is None:
        return StructuredOutputsParams(json_object=True)
    return StructuredOutputsParams(json=sampling.json_output.schema)


def _json_field(sampling: Sampling) -> str | None:
    return None if sampling.json_output is None else sampling.json_output.field


# What a grammar compiler puts before its reason: a time and its source file.
_SOURCE_LOCATION = re.compile(r"\[[0-9:]+\] \S+:[0-9]+: ")


def _rejected(error: VLLMClientError, fallback_param: str | None) -> RequestRejected:
    """vLLM's refusal as a 400 naming the field: its own parameter name when
    it gives one, else the field the request's constraint came from. The
    message is vLLM's, without the source locations a grammar compiler adds
    (a client never sees a file path)."""
    message = str(error.args[0]) if error.args else str(error)
    param = getattr(error, "parameter", None) or fallback_param
    return RequestRejected(_SOURCE_LOCATION.sub("", message).strip(), param)


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


def _stop_reason(finish_reason: str | None, stop_reason: int | str | None) -> StopReason:
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
