"""Dependency aliases for the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ponder.server.engine import VLLMGenerator
from ponder.server.errors import EngineUnavailable
from ponder.server.serving import StrategyService


def get_service(request: Request) -> StrategyService:
    service: StrategyService | None = getattr(request.app.state, "service", None)
    if service is None:
        raise EngineUnavailable("The engine is not ready yet.")
    return service


ServiceDep = Annotated[StrategyService, Depends(get_service)]


def get_engine_generator(request: Request) -> VLLMGenerator:
    generator: VLLMGenerator | None = getattr(request.app.state, "generator", None)
    if generator is None:
        raise EngineUnavailable("The engine is not ready yet.")
    return generator


EngineGeneratorDep = Annotated[VLLMGenerator, Depends(get_engine_generator)]
