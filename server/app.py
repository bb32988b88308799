"""The FastAPI application: ``create_app(settings)`` builds it, its lifespan
owns the one engine that every request shares."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI

from ponder.core.fingerprint import ModelIdentity
from ponder.core.policy import Policy, shown_source
from ponder.prm.probe import ProbeSetup, load_checked
from ponder.prm.probe_file import ProbeFileError
from ponder.prm.registry import NEUTRAL_COMBINATIONS, open_prms
from ponder.server.admission import SampleScheduler
from ponder.server.auth import require_api_key
from ponder.server.config import Settings
from ponder.server.embedded_model import cache_dir, embedded_model_dir
from ponder.server.engine import VLLMGenerator, open_engine
from ponder.server.engine_plan import (
    Device,
    EnginePlan,
    current_device,
    describe,
    plan_engines,
    runs_engines,
    settings_in_force,
)
from ponder.server.errors import register_error_handlers
from ponder.server.hardware import CPU_RUNNING_SAMPLES, REMOTE_RUNNING_SAMPLES
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
from ponder.server.security_headers import SecurityHeaders
from ponder.server.serving import StrategyService
from ponder.server.tool_calls import ToolParsers
from ponder.strategies.base import Verifiers
from ponder.strategies.prompts import answer_cues
from ponder.strategies.reasoning import NoReasoning, ReasoningSplitter

logger = logging.getLogger(__name__)


CHUNKS_PER_CAPACITY = 4


def sample_scheduler(settings: Settings, device: Device | None, engine_max_seqs: int | None
                     ) -> SampleScheduler:
    """On a GPU, as many samples as the embedded engine batches (its
    max_num_seqs: what `vllm serve` would run at once on that GPU). A
    remote engine's hardware is not this machine's: it gets
    REMOTE_RUNNING_SAMPLES unless told (and a fleet of replicas, their sum)."""
    if settings.max_running_samples is not None:
        capacity = settings.max_running_samples
    elif device is None or engine_max_seqs is None:
        capacity = REMOTE_RUNNING_SAMPLES
    else:
        capacity = CPU_RUNNING_SAMPLES if device.kind == "cpu" else engine_max_seqs
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
    plan: EnginePlan | None = None
    if runs_engines(settings):  # a device is asked for only when an engine needs one
        plan = plan_engines(settings, await asyncio.to_thread(current_device), model_path)

    def started(name: str, engine: Any) -> None:
        assert plan is not None  # engines start only with a plan
        app.state.engines[name] = settings_in_force(engine.vllm_config)
        logger.info("%s", describe(name, plan.device, app.state.engines[name]))

    probe = await asyncio.to_thread(_probe_setup, settings, model_path, plan)
    async with contextlib.AsyncExitStack() as stack:
        generator = await stack.enter_async_context(
            _open_generator(settings, model_path, plan, app.state.metrics)
        )
        if isinstance(generator, VLLMGenerator):
            started("policy", generator.engine)
        await generator.warm_up()
        served = generator.model_identity(settings.model_name)
        policy = _policy_for(settings.calibrated_policy, served)
        specs = settings.prm_specs
        prms = await stack.enter_async_context(
            open_prms(specs, engine_args=plan.prms if plan else None,
                      combinations=NEUTRAL_COMBINATIONS if policy is None else policy.verifiers,
                      on_engine_started=lambda name, engine: started(f"prm:{name}", engine),
                      probe=_probe_for(probe, settings, served))
        )
        # The embedded AsyncLLM, or the remote generator, which answers the
        # same two questions (errored, unfinished requests) for itself.
        app.state.engine = generator.engine if isinstance(generator, VLLMGenerator) else generator
        app.state.upstream = generator if isinstance(generator, RemoteGenerator) else None
        splitter = _splitter(settings, generator)
        markers = getattr(splitter, "thinking_markers", lambda: None)()
        app.state.service = StrategyService(
            settings=settings,
            generator=generator,
            splitter=splitter,
            thinking_markers=markers,
            answer_cues=answer_cues(
                lambda text: generator.tokenize(text, add_special_tokens=False),
                None if markers is None else markers.close,
            ),
            verifiers=Verifiers(prms, settings.default_prm or (specs[0].name if specs else None)),
            metrics=app.state.metrics,
            max_model_len=generator.max_model_len,
            tool_parsers=ToolParsers(settings.tool_call_parser, generator.tokenizer),
            scheduler=sample_scheduler(settings, plan.device if plan else None,
                                       app.state.engines.get("policy", {}).get("max_num_seqs")),
            lifecycle=app.state.lifecycle,
            model=served,
            policy=policy,
        )
        app.state.generator = generator
        logger.info("ponder is serving %s as '%s'", settings.model, settings.model_name)
        yield
        app.state.service = None
        app.state.generator = None
        app.state.engine = None
        app.state.upstream = None


def _policy_for(policy: Policy, served: ModelIdentity) -> Policy | None:
    """The policy, if it was fit on the served model: another model's
    difficulty bins and verifier weights say nothing about this one."""
    if policy.model.matches(served):
        return policy
    logger.warning(
        "The policy (%s) was fit on %s (fingerprint %s), and this server serves %s "
        "(fingerprint %s): strategy auto follows the model-neutral rule and the combined "
        "verifiers use untrained weights. `ponder calibrate` fits a policy for this model.",
        shown_source(policy.source), policy.model.name, policy.model.fingerprint, served.name,
        served.fingerprint)
    return None


def _probe_setup(settings: Settings, model_path: str, plan: EnginePlan | None
                 ) -> ProbeSetup | None:
    """Where the probe reads its hidden states: the served model's
    directory (its weights, for the in-process pooling engine) or
    --probe-url. Whether the probe suits the model is :func:`_probe_for`'s
    question, once the engine says what it serves."""
    path = settings.probe_path
    if path is None:
        return None
    model_dir = Path(model_path)
    if settings.probe_url is None and not (model_dir / "config.json").is_file():
        raise ProbeFileError(f"--probe reads hidden states from the served model's weights; "
                             f"{model_path!r} is not a model directory (or give --probe-url)")
    engine_args: dict[str, Any] = {}
    if plan is not None and settings.probe_url is None:
        # Its own KV cache, and the served engine's dtype and graph capture:
        # the same weights read in the same numbers.
        engine_args = {"kv_cache_memory_bytes": int(settings.prm_kv_cache_gb * 1024**3),
                       "dtype": plan.policy.dtype, "enforce_eager": plan.policy.enforce_eager}
    return ProbeSetup(path, model_dir, cache_dir() / "probe-models", settings.probe_url,
                      engine_args)


def _probe_for(setup: ProbeSetup | None, settings: Settings, served: ModelIdentity
               ) -> ProbeSetup | None:
    """The probe, if it was fit on the served model. One fit on another
    model stops the server when the operator named it (--probe); one that
    came with a policy is only left out, as that policy is."""
    if setup is None:
        return None
    try:
        load_checked(setup, served)
    except ProbeFileError as error:
        if settings.probe is not None:
            raise
        logger.warning("The probe %s does not suit this model, so prm 'probe' is off: %s",
                       setup.path.name, error)
        return None
    return setup


@asynccontextmanager
async def _open_generator(
    settings: Settings, model_path: str, plan: EnginePlan | None, metrics: Metrics
) -> AsyncIterator[VLLMGenerator | RemoteGenerator]:
    if settings.engine == "remote":
        assert settings.engine_url is not None  # Settings demands it
        async with open_remote_engine(
            settings.engine_url, model_path, settings.engine_timeout, settings.served_model_name
        ) as remote:
            remote.on_retry = metrics.engine_retries.inc
            yield remote
        return
    assert plan is not None  # an embedded engine always has one
    async with open_engine(plan.policy) as engine:
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
    # The settings each in-process engine runs with, by name (policy,
    # prm:NAME), once it has started.
    app.state.engines = {}
    register_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(RequestContextMiddleware)  # every response has its id
    app.add_middleware(SecurityHeaders)  # outermost: every response has them
    secured = [Depends(require_api_key)]
    operator = secured if settings.secure_docs_and_metrics else []
    app.include_router(health.router)
    app.include_router(tokenize.router, dependencies=secured)
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
