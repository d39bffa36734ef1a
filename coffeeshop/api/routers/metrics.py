"""GET /metrics: Prometheus text format.

HTTP metrics (prometheus-fastapi-instrumentator) and the domain counters live in this
process; with several uvicorn workers they are written to PROMETHEUS_MULTIPROC_DIR
(``coffeeshop serve`` sets one up) and every worker answers with the sum over all of them.
Read-side figures (projection state, lag, rebuilds, verify) are read from the database.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from coffeeshop.api.deps import ContainerDep
from coffeeshop.api.metrics import ProjectionCollector

router = APIRouter(tags=["operations"])


def _process_counters(http: CollectorRegistry | None) -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # every worker's files, HTTP series included
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY) + (generate_latest(http) if http is not None else b"")


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, container: ContainerDep) -> Response:
    """HTTP, command, store, projector, cache and rate-limit counters; read-side figures."""
    registry = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ProjectionCollector(container))
        request.app.state.metrics_registry = registry
    own = await run_in_threadpool(
        _process_counters, getattr(request.app.state, "http_registry", None)
    )
    body = await run_in_threadpool(generate_latest, registry)
    return Response(own + body, media_type=CONTENT_TYPE_LATEST)
