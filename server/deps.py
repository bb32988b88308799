"""Dependency aliases for the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ponder.server.errors import EngineUnavailable
from ponder.server.serving import StrategyService


def get_service(request: Request) -> StrategyService:
    service: StrategyService | None = getattr(request.app.state, "service", None)
    if service is None:
        raise EngineUnavailable("The engine is not ready yet.")
    return service


ServiceDep = Annotated[StrategyService, Depends(get_service)]
