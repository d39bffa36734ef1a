"""The API key cache's bounds: capacity (least recently used goes first) and lifetime."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

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


@pytest.mark.redis
def test_the_least_recently_used_key_goes_first(redis: Redis) -> None:
    cache, load = ApiKeyCache(redis, capacity=2), Loads()
    for key in ("a", "b", "a", "c", "a", "b"):  # c pushes b out; b comes back, pushing c out
        principal = cache.lookup(key, load)
        assert principal is not None
        assert principal.api_key_id == key
    assert load.keys == ["a", "b", "c", "b"]
    assert len(cache) == 2


@pytest.mark.redis
def test_an_entry_lives_ttl_seconds_and_unknown_keys_are_not_kept(redis: Redis) -> None:
    now = [0.0]
    cache, load = ApiKeyCache(redis, ttl_s=60, monotonic=lambda: now[0]), Loads()
    cache.lookup("a", load)
    now[0] = 59.0
    cache.lookup("a", load)
    now[0] = 60.5
    cache.lookup("a", load)
    assert cache.lookup("unknown", load) is None
    assert cache.lookup("unknown", load) is None
    assert load.keys == ["a", "a", "unknown", "unknown"]
