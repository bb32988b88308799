"""GET /health: open, for load balancers, Docker and Kubernetes. 503 while
the engine is starting or gone, and while the server drains for shutdown,
so traffic goes elsewhere before it stops."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    engine = getattr(request.app.state, "engine", None)
    if request.app.state.lifecycle.draining:
        status = "draining"
    elif engine is None or engine.errored:
        status = "unavailable"
    else:
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": status}, status_code=503, headers={"Retry-After": "5"})
