"""GET /metrics: ponder's figures by strategy, then the engine's own
(``vllm:*``: running and waiting requests, KV-cache use, prefix-cache
queries and hits, its latencies), which vLLM's stat logger keeps in
prometheus_client's global registry."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

router = APIRouter(tags=["metrics"])


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    figures = request.app.state.metrics
    engine = request.app.state.engine
    service = request.app.state.service
    figures.engine_requests.set(engine.get_num_unfinished_requests() if engine else 0)
    figures.asyncio_tasks.set(len(asyncio.all_tasks()))
    if service is not None:
        figures.samples_running.set(service.scheduler.running)
        figures.samples_waiting.set(service.scheduler.waiting)
    exposition = generate_latest(figures.registry) + generate_latest(REGISTRY)
    return Response(exposition, media_type=CONTENT_TYPE_LATEST)
