"""HTTP plumbing shared by query routes: min_position (read-your-writes) and its header."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from coffeeshop.api.container import Container
from coffeeshop.api.identity.principal import Principal
from coffeeshop.queries.consistency import wait_until_applied

MinPosition = Annotated[
    int | None,
    Query(ge=0, description="Wait until this restaurant position is visible (read-your-writes)"),
]


def await_position(
    container: Container,
    principal: Principal,
    projection: str,
    min_position: int | None,
    response: Response,
) -> None:
    """Block (bounded by CONSISTENCY_TIMEOUT_MS) until the projection reached min_position;
    if it did not, the answer is what the projection has, flagged X-Projection-Stale."""
    if min_position is None:
        return
    timeout_s = container.settings.consistency_timeout_ms / 1000
    fresh = wait_until_applied(
        container.reads, projection, principal.restaurant_id, min_position, timeout_s
    )
    if not fresh:
        response.headers["X-Projection-Stale"] = "true"
