"""GET /health: open, for load balancers, Docker and Kubernetes. 503 while
the engine is starting or gone, and while the server drains for shutdown,
so traffic goes elsewhere before it stops. With a remote engine, 503 also
while the upstream (a vLLM server, or a router while no replica lives)
does not answer its own /health with 200 (asked at most once a second, and
once at a time however many probes come at once)."""

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
    elif (upstream := request.app.state.upstream) is not None and not await upstream.healthy():
        status = "upstream_unavailable"
    else:
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": status}, status_code=503, headers={"Retry-After": "5"})
