"""HTTP plumbing shared by query routes: min_position (read-your-writes) and its header."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Query, Response

from coffeeshop.api.deps import ContainerDep, CurrentPrincipal
from coffeeshop.queries.consistency import wait_until_applied

STALE = "X-Projection-Stale"
MinPosition = Annotated[
    int | None,
    Query(ge=0, description="Wait until this restaurant position is visible (read-your-writes)"),
]


def fresh_to(projection: str) -> Callable[..., Awaitable[None]]:
    """A dependency: wait (bounded by CONSISTENCY_TIMEOUT_MS) until ``projection`` reached
    ``min_position``; if it did not, the answer is what the projection has, flagged
    X-Projection-Stale.

    A coroutine: the wait sleeps on the event loop between checks, so waiting requests hold
    no thread. A thread each, they used up the pool at a few hundred commands a second and
    queued every other request behind them."""

    async def wait(
        caller: CurrentPrincipal,
        container: ContainerDep,
        response: Response,
        min_position: MinPosition = None,
    ) -> None:
        if min_position is None:
            return
        timeout_s = container.settings.consistency_timeout_ms / 1000
        fresh = await wait_until_applied(
            container.reads, projection, caller.restaurant_id, min_position, timeout_s
        )
        if not fresh:
            response.headers[STALE] = "true"

    return wait
