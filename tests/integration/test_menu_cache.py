"""The menu cache: Redis (real server) and in-memory caches, failing open, keyed by generation."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.retry import Retry
from sqlalchemy import Engine

from coffeeshop.commands.models import AvailabilityUpdate, CategoryUpdate
from coffeeshop.queries.cache import Cache, MemoryCache, RedisCache
from coffeeshop.queries.menu import MENU_TTL_S, current_menu, menu_cache_key
from tests.conftest import REDIS_URL
from tests.integration.test_menu_projection import MenuWorld

PREFIX = "coffeeshop:cache:"


def sync_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=0.2, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0)
    )


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """Wraps a cache and counts what reaches it."""

    def __init__(self, inner: Cache) -> None:
        self.inner = inner
        self.hits = self.misses = 0
        self.sets: list[str] = []
        self.adds: list[str] = []

    def get(self, key: str) -> bytes | None:
        value = self.inner.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    async def aget(self, key: str) -> bytes | None:
        return await self.inner.aget(key)

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self.sets.append(key)
        self.inner.set(key, value, ttl_s)

    def add(self, key: str, value: bytes, ttl_s: int) -> None:
        self.adds.append(key)
        self.inner.add(key, value, ttl_s)

    def close(self) -> None:
        self.inner.close()


class Broken:
    """A Redis client whose every call fails, counting the calls."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def get(self, _key: str) -> Any:
        self.calls += 1
        raise self.error

    def set(self, *_args: Any, **_kwargs: Any) -> Any:
        self.calls += 1
        raise self.error

    def close(self) -> None:
        pass


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    """The real Redis (TEST_REDIS_URL); every key a test wrote is removed afterwards."""
    connection = sync_redis(REDIS_URL)
    try:
        connection.ping()
    except redis.RedisError as exc:  # pragma: no cover - a setup problem
        pytest.exit(f"Redis is not reachable at {REDIS_URL}: {exc}", 2)
    before = set(connection.keys(PREFIX + "*"))
    yield connection
    created = set(connection.keys(PREFIX + "*")) - before
    if created:
        connection.delete(*created)
    connection.close()


def menu_keys(client: redis.Redis, restaurant_id: str) -> list[Any]:
    keys: list[Any] = client.keys(f"{PREFIX}menu:*:{restaurant_id}:*")
    return sorted(keys)


# -- MemoryCache -------------------------------------------------------------------------------


def test_memory_cache_expires_entries_after_their_ttl() -> None:
    clock = FakeTime()
    cache = MemoryCache(monotonic=clock)
    cache.set("k", b"v", ttl_s=10)
    assert cache.get("k") == b"v"
    clock.now += 9.9
    assert cache.get("k") == b"v"
    clock.now += 0.1
    assert cache.get("k") is None
    assert len(cache) == 0


def test_memory_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = MemoryCache(max_entries=3)
    for key in "abc":
        cache.set(key, key.encode(), ttl_s=60)
    assert cache.get("a") == b"a"  # a is now the most recently used
    cache.set("d", b"d", ttl_s=60)
    assert len(cache) == 3
    assert cache.get("b") is None
    assert [cache.get(key) for key in "acd"] == [b"a", b"c", b"d"]


def test_memory_cache_needs_room_for_one_entry() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        MemoryCache(max_entries=0)


# -- RedisCache --------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_cache_round_trips_bytes_with_a_ttl(client: redis.Redis) -> None:
    cache = RedisCache(client)
    key = f"probe:{uuid.uuid4()}"
    assert cache.get(key) is None
    cache.set(key, b"\x00{}\xff", ttl_s=30)
    assert cache.get(key) == b"\x00{}\xff"
    assert 0 < client.ttl(PREFIX + key) <= 30


def test_an_unreachable_redis_is_a_miss_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    cache = RedisCache(sync_redis("redis://127.0.0.1:1/0"))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="coffeeshop.cache"):
        cache.set("menu:x", b"value", ttl_s=10)
        assert cache.get("menu:x") is None
    assert time.monotonic() - started < 1.0
    assert any("cache" in record.getMessage() for record in caplog.records)
    assert all(record.levelno == logging.WARNING for record in caplog.records)


@pytest.mark.parametrize("error", [RedisConnectionError("down"), ResponseError("OOM"), OSError()])
def test_any_redis_error_fails_open_and_pauses_the_cache(error: Exception) -> None:
    broken, clock = Broken(error), FakeTime()
    cache = RedisCache(broken, pause_s=1.0, monotonic=clock)  # type: ignore[arg-type]

    assert cache.get("k") is None
    assert broken.calls == 1
    cache.set("k", b"v", ttl_s=10)  # paused: Redis is not even tried
    assert cache.get("k") is None
    assert broken.calls == 1

    clock.now += 1.0
    cache.set("k", b"v", ttl_s=10)  # tried again after the pause, fails open again
    assert broken.calls == 2


# -- the menu through the cache ------------------------------------------------------------------


@pytest.fixture
def world(engine: Engine) -> MenuWorld:
    return MenuWorld(engine)


@pytest.mark.redis
def test_the_second_read_is_a_hit_and_a_change_is_visible_at_once(
    world: MenuWorld, client: redis.Redis
) -> None:
    drinks = world.category("Drinks")
    latte = world.item(drinks, "Latte")
    world.project()
    cache = Counting(RedisCache(client))

    first = current_menu(world.engine, cache, world.restaurant_id)
    assert (cache.hits, cache.misses, len(cache.sets)) == (0, 1, 1)
    assert current_menu(world.engine, cache, world.restaurant_id) == first
    assert (cache.hits, cache.misses, len(cache.sets)) == (1, 1, 1)
    key = menu_cache_key(world.restaurant_id, world.generation())
    assert menu_keys(client, world.restaurant_id) == [(PREFIX + key).encode()]
    assert 0 < client.ttl(PREFIX + key) <= MENU_TTL_S

    world.commands.set_availability(world.ctx, latte, AvailabilityUpdate(is_available=False))
    # Not projected yet: the menu (and its generation) are what the projection holds.
    assert current_menu(world.engine, cache, world.restaurant_id) == first
    world.project()
    changed = json.loads(current_menu(world.engine, cache, world.restaurant_id))
    assert changed["categories"][0]["items"][0]["is_available"] is False
    assert len(menu_keys(client, world.restaurant_id)) == 2  # one per generation
    assert cache.hits == 2


def test_a_menu_read_while_the_projection_moves_is_not_cached(world: MenuWorld) -> None:
    drinks = world.category("Drinks")
    world.project()

    class ChangesTheMenu(Counting):
        def get(self, key: str) -> bytes | None:
            # Between reading the generation and reading the tables, a change commits.
            world.commands.update_category(world.ctx, drinks, CategoryUpdate(name="Hot drinks"))
            world.project()
            return super().get(key)

    cache = ChangesTheMenu(MemoryCache())
    current_menu(world.engine, cache, world.restaurant_id)
    assert cache.sets == []  # the document may belong to either generation: not stored


@pytest.mark.redis
def test_with_redis_down_the_menu_comes_from_the_tables(world: MenuWorld) -> None:
    world.item(world.category("Drinks"), "Latte")
    world.project()
    down = RedisCache(sync_redis("redis://127.0.0.1:1/0"))
    healthy = current_menu(world.engine, MemoryCache(), world.restaurant_id)
    assert current_menu(world.engine, down, world.restaurant_id) == healthy
    assert json.loads(healthy)["categories"][0]["items"][0]["name"] == "Latte"
