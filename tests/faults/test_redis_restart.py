"""The long-running processes' Redis client survives a Redis restart without losing a call.

redis-py's asyncio client does not retry by default: the first command on a connection
pooled before the restart fails with "Connection closed by server" although Redis is back.
The projector's watcher then recreated its consumer groups one catch-up interval late.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from coffeeshop.events.redis_bus import connect_redis, ensure_groups
from tests.faults.conftest import RedisServer


async def _after_a_restart(server: RedisServer, client: Redis) -> int:
    """Use ``client``, restart Redis underneath it, then create the groups again."""
    try:
        assert await client.ping()
        server.stop()
        server.start()
        return await ensure_groups(client, ["orders", "menu"], partitions=2)
    finally:
        await client.aclose()


def test_the_bus_client_works_on_its_first_call_after_redis_restarted(
    private_redis: RedisServer,
) -> None:
    created = asyncio.run(_after_a_restart(private_redis, connect_redis(private_redis.url)))
    assert created == 4  # Redis came back empty: every group of every partition


def test_a_plain_client_loses_that_first_call(private_redis: RedisServer) -> None:
    """What the retry is for (if redis-py starts retrying by default, this test says so)."""
    with pytest.raises(RedisConnectionError):
        asyncio.run(_after_a_restart(private_redis, Redis.from_url(private_redis.url)))
