"""The API key cache's bounds: capacity (least recently used goes first) and lifetime."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from coffeeshop.api.identity.key_cache import ApiKeyCache
from coffeeshop.api.identity.principal import Principal
from coffeeshop.api.identity.roles import Role
from tests.conftest import REDIS_URL


@pytest.fixture
def redis() -> Iterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    client.close()


class Loads:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def __call__(self, key_hash: str) -> Principal | None:
        self.keys.append(key_hash)
        if key_hash.startswith("unknown"):
            return None
        return Principal(restaurant_id=f"r-{key_hash}", role=Role.POS, api_key_id=key_hash)


def _lookups(cache: ApiKeyCache, load: Loads, keys: list[str]) -> list[Principal | None]:
    async def run() -> list[Principal | None]:
        return [await cache.lookup(key, load) for key in keys]

    return asyncio.run(run())


def _cache(redis: Redis, **options: Any) -> ApiKeyCache:
    return ApiKeyCache(AsyncRedis.from_url(REDIS_URL), redis, **options)


@pytest.mark.redis
def test_the_least_recently_used_key_goes_first(redis: Redis) -> None:
    cache, load = _cache(redis, capacity=2), Loads()
    keys = ["a", "b", "a", "c", "a", "b"]  # c pushes b out; b comes back, pushing c out
    found = _lookups(cache, load, keys)
    assert [principal.api_key_id if principal else None for principal in found] == keys
    assert load.keys == ["a", "b", "c", "b"]
    assert len(cache) == 2


@pytest.mark.redis
def test_an_entry_lives_ttl_seconds_and_unknown_keys_are_not_kept(redis: Redis) -> None:
    now = [0.0]
    cache = _cache(redis, ttl_s=60, monotonic=lambda: now[0])
    load = Loads()

    async def run() -> list[Principal | None]:
        found = []
        for at, key in ((0.0, "a"), (59.0, "a"), (60.5, "a"), (61.0, "unknown"), (62.0, "unknown")):
            now[0] = at
            found.append(await cache.lookup(key, load))
        return found

    found = asyncio.run(run())
    assert found[3:] == [None, None]
    assert load.keys == ["a", "a", "unknown", "unknown"]
