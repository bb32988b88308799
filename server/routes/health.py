"""GET /health (open, for load balancers and Docker) and GET /metrics:
ponder's own figures, then the engine's (``vllm:*``: queue, KV-cache use,
prefix-cache queries and hits), which vLLM's stat logger keeps in
prometheus_client's global registry."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    engine = getattr(request.app.state, "engine", None)
    if engine is None or engine.errored:
        return JSONResponse(
            {"status": "unavailable"}, status_code=503, headers={"Retry-After": "5"}
        )
    return JSONResponse({"status": "ok"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    registry = request.app.state.metrics
    engine = request.app.state.engine
    registry.engine_requests.set(engine.get_num_unfinished_requests() if engine else 0)
    exposition = generate_latest(registry.registry) + generate_latest(REGISTRY)
    return Response(exposition, media_type=CONTENT_TYPE_LATEST)
