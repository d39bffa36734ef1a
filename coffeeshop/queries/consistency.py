"""Read-your-writes: wait until a projection has applied a restaurant's events up to a seq."""

from __future__ import annotations

import asyncio
import functools
import time

from anyio import to_thread
from sqlalchemy import Engine, select

from coffeeshop.projections.tracking import checkpoint_table

POLL_INTERVAL_S = 0.005


def applied_position(engine: Engine, projection: str, restaurant_id: str) -> int:
    checkpoints = checkpoint_table(projection)
    with engine.connect() as conn:
        seq = conn.execute(
            select(checkpoints.c.seq).where(checkpoints.c.restaurant_id == restaurant_id)
        ).scalar()
    return int(seq or 0)


async def wait_until_applied(
    engine: Engine, projection: str, restaurant_id: str, position: int, timeout_s: float
) -> bool:
    """True once ``projection`` has applied ``position``; False if the timeout came first.
    Each check is one query in the thread pool; between checks it sleeps on the event loop."""
    deadline = time.monotonic() + timeout_s
    check = functools.partial(applied_position, engine, projection, restaurant_id)
    while await to_thread.run_sync(check) < position:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(POLL_INTERVAL_S)
    return True
