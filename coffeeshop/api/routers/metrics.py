"""GET /metrics: Prometheus text format."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from coffeeshop.api.deps import ContainerDep
from coffeeshop.api.metrics import ProjectionCollector

router = APIRouter(tags=["operations"])


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, container: ContainerDep) -> Response:
    """Read-side figures (projection state, lag, rebuilds, verify results)."""
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ProjectionCollector(container))
        request.app.state.metrics_registry = registry
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
