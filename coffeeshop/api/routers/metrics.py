"""GET /metrics: Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from coffeeshop.api.deps import ContainerDep
from coffeeshop.api.metrics import ProjectionCollector

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, container: ContainerDep) -> Response:
    """Process counters and read-side figures (projection state, lag, rebuilds, verify)."""
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ProjectionCollector(container))
        request.app.state.metrics_registry = registry
    # This process's own counters (rate limits, ...), then the read side's figures.
    own = await run_in_threadpool(generate_latest, REGISTRY)
    body = await run_in_threadpool(generate_latest, registry)
    return Response(own + body, media_type=CONTENT_TYPE_LATEST)
