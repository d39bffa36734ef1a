"""Read-your-writes waits hold no thread while they wait (min_position)."""

from __future__ import annotations

import asyncio
import time
import uuid

import anyio
import pytest
from sqlalchemy import Engine

from coffeeshop.queries.consistency import wait_until_applied

WAITERS = 40
TIMEOUT_S = 0.3


@pytest.mark.mysql
def test_many_waits_share_a_small_thread_pool(mysql_engine: Engine) -> None:
    """40 requests waiting 0.3 s each for a position no projection reached, with 2 threads:
    together under a second. Holding a thread each for the whole wait, they take 6 s."""

    async def scenario() -> tuple[list[bool], float]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2
        restaurant = str(uuid.uuid4())
        begin = time.monotonic()
        waits = [
            wait_until_applied(mysql_engine, "orders", restaurant, 1, TIMEOUT_S)
            for _ in range(WAITERS)
        ]
        answers = await asyncio.gather(*waits)
        return answers, time.monotonic() - begin

    answers, took = anyio.run(scenario)
    assert answers == [False] * WAITERS  # nothing reached position 1: stale, not an error
    assert took < WAITERS * TIMEOUT_S / 2 / 2, took  # half the 6 s of one thread each
