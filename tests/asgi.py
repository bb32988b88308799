"""The real app and HTTP stack over ASGI, with a scripted generator in place
of the engine: for what needs a request held open, a failure injected, or a
setting the session's server does not have."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from ponder.core.fingerprint import ModelIdentity
from ponder.core.generation import Generator
from ponder.server.admission import SampleScheduler
from ponder.server.app import create_app
from ponder.server.config import Settings
from ponder.server.serving import StrategyService
from ponder.strategies.base import Verifiers
from ponder.strategies.reasoning import NoReasoning


def asgi_app(generator: Generator, verifiers: Verifiers | None = None,
             scheduler: SampleScheduler | None = None, served: ModelIdentity | None = None,
             **settings: Any) -> FastAPI:
    """``served``: the model the scripted engine stands for (default: the
    one the policy was fit on, so the policy applies)."""
    app = create_app(Settings(served_model_name="smollm2", **settings))
    policy = app.state.settings.calibrated_policy
    served = served or policy.model
    app.state.service = StrategyService(
        settings=app.state.settings, generator=generator, splitter=NoReasoning(),
        verifiers=verifiers or Verifiers(), metrics=app.state.metrics, max_model_len=2048,
        scheduler=scheduler or SampleScheduler.unlimited(), lifecycle=app.state.lifecycle,
        model=served, policy=policy if policy.model.matches(served) else None,
    )
    return app


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ponder")
