"""Dependency aliases for the routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from ponder.server.errors import EngineUnavailable
from ponder.server.rendering import PromptRenderer
from ponder.server.serving import StrategyService


def _ready(request: Request, name: str) -> Any:
    """What the app's lifespan put on its state once the engine is up."""
    value = getattr(request.app.state, name, None)
    if value is None:
        raise EngineUnavailable("The engine is not ready yet.")
    return value


def get_service(request: Request) -> StrategyService:
    return _ready(request, "service")  # type: ignore[no-any-return]


def get_engine_generator(request: Request) -> PromptRenderer:
    return _ready(request, "generator")  # type: ignore[no-any-return]


ServiceDep = Annotated[StrategyService, Depends(get_service)]
EngineGeneratorDep = Annotated[PromptRenderer, Depends(get_engine_generator)]
