"""Liveness and readiness."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text

from coffeeshop.api.container import Container
from coffeeshop.api.deps import ContainerDep
from coffeeshop.api.errors import ServiceUnavailable
from coffeeshop.api.runtime import ProjectionStatus, projection_report

router = APIRouter(tags=["operations"])
CHECK_TIMEOUT_S = 2.0


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers. Touches nothing."""
    return {"status": "ok"}


@router.get("/health/ready")
async def ready(container: ContainerDep) -> dict[str, Any]:
    """Readiness: the database (and Redis, when configured) answer."""
    database = await _check(run_in_threadpool(_ping_database, container))
    redis = "not configured"
    if container.redis is not None:
        redis = await _check(container.redis.ping())
    down = [
        name for name, state in (("database", database), ("redis", redis)) if state == "unhealthy"
    ]
    if down:
        raise ServiceUnavailable(f"Not ready: {', '.join(down)} unavailable")
    report = await run_in_threadpool(projection_report, container)
    projections = {row.name: _projection(row) for row in report}
    return {"status": "ready", "database": database, "redis": redis, "projections": projections}


def _projection(row: ProjectionStatus) -> dict[str, Any]:
    """State and lag; a failed projection also says why (it stays stopped at that event)."""
    body: dict[str, Any] = {
        "state": row.state,
        "lag_events": row.lag_events,
        "lag_seconds": row.lag_seconds,
    }
    if row.state == "failed":
        body["error"] = row.error
    return body


async def _check(probe: Any) -> str:
    try:
        await asyncio.wait_for(probe, timeout=CHECK_TIMEOUT_S)
    except Exception:  # any failure to answer means "unhealthy"
        return "unhealthy"
    return "healthy"


def _ping_database(container: Container) -> None:
    with container.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
