"""The menu generation in the cache: announced by the projector before its commit, read by
GET /menu without the database, and never ahead of a menu the cache holds a wrong copy of.

Both backends: MariaDB with the real Redis, SQLite with the in-process cache.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis as AsyncRedis
from sqlalchemy import Engine, event

from coffeeshop.commands.handling import CommandExecutor
from coffeeshop.commands.models import AvailabilityUpdate, MenuItemUpdate, OrderCreate
from coffeeshop.commands.order_handlers import OrderCommands
from coffeeshop.projections import menu
from coffeeshop.projections.menu import GENERATION_TTL_S, generation_cache_key
from coffeeshop.projections.projector import Projector
from coffeeshop.queries.cache import Cache, MemoryCache, RedisCache
from coffeeshop.queries.menu import Menu, _read_menu, cached_menu, current_menu, menu_cache_key
from tests.conftest import REDIS_URL
from tests.integration.test_menu_cache import Counting, FakeTime, sync_redis
from tests.integration.test_menu_projection import MenuWorld, StepClock

PREFIX = "coffeeshop:cache:"


@pytest.fixture
def cache(engine: Engine) -> Iterator[Cache]:
    """The cache each backend runs with: Redis beside MariaDB, in-process beside SQLite."""
    if engine.dialect.name == "sqlite":
        yield MemoryCache()
        return
    client = sync_redis(REDIS_URL)
    before = set(client.keys(PREFIX + "*"))
    yield RedisCache(client, async_client=AsyncRedis.from_url(REDIS_URL))
    created = set(client.keys(PREFIX + "*")) - before
    if created:
        client.delete(*created)
    client.close()


class World(MenuWorld):
    """A menu world whose projector announces to ``cache``."""

    def __init__(self, engine: Engine, cache: Cache) -> None:
        super().__init__(engine)
        self.cache = cache
        self.projector = Projector(menu.build(), engine, self.store, cache=cache)
        # One loop for every read, as in an API process: async Redis connections belong to
        # the loop that opened them.
        self.loop = asyncio.new_event_loop()

    def cached(self) -> bytes | None:
        return self.loop.run_until_complete(cached_menu(self.cache, self.restaurant_id))

    def announced(self) -> bytes | None:
        return self.cache.get(generation_cache_key(self.restaurant_id))

    def served(self) -> bytes:
        """What GET /menu answers: the cache alone if it can, else the tables' path."""
        body = self.cached()
        return body if body is not None else self.from_tables()

    def from_tables(self) -> bytes:
        return current_menu(self.engine, self.cache, self.restaurant_id)

    def truth(self) -> dict[str, Any]:
        """The committed menu, rendered from the tables without any cache."""
        with self.engine.connect() as conn:
            return json.loads(
                Menu(categories=_read_menu(conn, self.restaurant_id)).model_dump_json()
            )


WorldFactory = Callable[[Engine, Cache], World]


@pytest.fixture
def make_world() -> Iterator[WorldFactory]:
    made: list[World] = []

    def make(engine: Engine, cache: Cache) -> World:
        made.append(World(engine, cache))
        return made[-1]

    yield make
    for world in made:
        world.loop.close()


@pytest.fixture
def world(engine: Engine, cache: Cache, make_world: WorldFactory) -> World:
    return make_world(engine, cache)


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL the engine sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


# -- the projector's announcement ----------------------------------------------------------------


def test_the_generation_is_in_the_cache_before_the_commit_that_makes_it(world: World) -> None:
    drinks = world.category("Drinks")
    world.item(drinks, "Latte")
    at_commit: list[bytes | None] = []
    listener = lambda _conn: at_commit.append(world.announced())  # noqa: E731
    event.listen(world.engine, "commit", listener)
    try:
        world.project()
    finally:
        event.remove(world.engine, "commit", listener)

    generation = world.generation()
    assert generation == 3  # created, item added, item attached
    assert b"%d" % generation in at_commit  # already there when the projector committed
    assert world.announced() == b"%d" % generation


@pytest.mark.redis
def test_the_announcement_expires(mysql_engine: Engine, make_world: WorldFactory) -> None:
    client = sync_redis(REDIS_URL)
    world = make_world(mysql_engine, RedisCache(client))
    world.category("Drinks")
    world.project()
    key = PREFIX + generation_cache_key(world.restaurant_id)
    assert 0 < client.ttl(key) <= GENERATION_TTL_S
    client.delete(key)


def test_batches_without_menu_events_announce_nothing(
    engine: Engine, make_world: WorldFactory
) -> None:
    recording = Counting(MemoryCache())
    world = make_world(engine, recording)
    item = world.item(world.category("Drinks"), "Latte")
    world.project()
    assert len(recording.sets + recording.adds) == 1  # one batch, one restaurant: one announcement

    orders = OrderCommands(CommandExecutor(world.store, StepClock()), lambda *_: True)
    body = OrderCreate.model_validate({"items": [{"menu_item_id": item, "quantity": 2}]})
    orders.place(world.ctx, body)
    assert world.project() > 0  # the order's events pass the menu projection by
    assert len(recording.sets + recording.adds) == 1


def test_rebuilds_write_other_tables_and_announce_nothing(world: World) -> None:
    world.category("Drinks")
    recording = Counting(MemoryCache())
    scratch = {table: table for table in menu.build().all_tables}  # any redirect at all
    shadow = Projector(menu.build(), world.engine, world.store, targets=scratch, cache=recording)
    shadow.catch_up_restaurant(world.restaurant_id, world.store.head(world.restaurant_id))
    assert recording.sets + recording.adds == []


# -- the reader ----------------------------------------------------------------------------------


def test_a_warm_menu_is_served_without_the_database(world: World) -> None:
    world.item(world.category("Drinks"), "Latte")
    world.project()
    first = world.served()  # the tables' path: it caches the document
    with statements(world.engine) as sent:
        again = world.cached()
    assert again == first
    assert sent == []
    assert json.loads(first) == world.truth()


def test_a_change_is_served_as_soon_as_it_is_committed(world: World) -> None:
    latte = world.item(world.category("Drinks"), "Latte")
    world.project()
    before = world.served()
    assert world.served() == before  # warm

    world.commands.set_availability(world.ctx, latte, AvailabilityUpdate(is_available=False))
    assert world.served() == before  # not projected: the committed menu is still the old one
    world.project()
    after = json.loads(world.served())
    assert after["categories"][0]["items"][0]["is_available"] is False
    assert after == world.truth()


def test_an_announcement_ahead_of_the_tables_answers_from_the_tables(world: World) -> None:
    """The projector announced, then rolled back (or has not committed yet)."""
    world.item(world.category("Drinks"), "Latte")
    world.project()
    generation = world.generation()
    key = generation_cache_key(world.restaurant_id)
    world.cache.set(key, b"%d" % (generation + 1), GENERATION_TTL_S)

    assert world.cached() is None
    body = world.from_tables()
    assert json.loads(body) == world.truth()
    assert world.cache.get(menu_cache_key(world.restaurant_id, generation + 1)) is None
    assert world.announced() == b"%d" % (generation + 1)  # the reader does not overwrite it


def test_a_missing_announcement_is_restored_from_the_tables(world: World) -> None:
    world.item(world.category("Drinks"), "Latte")
    world.project()
    key = generation_cache_key(world.restaurant_id)
    if isinstance(world.cache, RedisCache):
        sync_redis(REDIS_URL).delete(PREFIX + key)
    else:
        world.cache = MemoryCache()  # as after a restart
    assert world.cached() is None

    body = world.from_tables()
    assert world.announced() == b"%d" % world.generation()
    assert world.cached() == body


def test_a_lost_announcement_is_outlived_by_at_most_its_ttl(
    engine: Engine, make_world: WorldFactory
) -> None:
    clock = FakeTime()
    world = make_world(engine, MemoryCache(monotonic=clock))
    latte = world.item(world.category("Drinks"), "Latte")
    world.project()
    old = world.served()
    world.served()  # warm

    # The change commits but its announcement never reaches the cache.
    world.commands.update_item(world.ctx, latte, MenuItemUpdate(price_cents=990))
    Projector(menu.build(), engine, world.store).catch_up_restaurant(
        world.restaurant_id, world.store.head(world.restaurant_id)
    )
    assert world.served() == old  # the stale window a lost announcement opens...
    clock.now += GENERATION_TTL_S
    new = json.loads(world.served())  # ...closes when the entry expires
    assert new["categories"][0]["items"][0]["price_cents"] == 990


def test_garbage_under_the_generation_key_is_a_miss(world: World) -> None:
    world.category("Drinks")
    world.project()
    world.cache.set(generation_cache_key(world.restaurant_id), b"not-a-number", 5)
    assert world.cached() is None
    assert json.loads(world.from_tables()) == world.truth()


@pytest.mark.redis
def test_an_unreachable_redis_fails_open_on_the_event_loop() -> None:
    down = "redis://127.0.0.1:1/0"
    cache = RedisCache(sync_redis(down), async_client=AsyncRedis.from_url(down))
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(cache.aget("menu-generation:x")) is None
        assert loop.run_until_complete(cache.aget("menu-generation:x")) is None  # paused
    finally:
        loop.close()


# -- many changes, projections and reads in any order ------------------------------------------


STEPS = st.lists(
    st.sampled_from(["price", "availability", "rename", "project", "read", "expire"]),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS, seed=st.integers(0, 2**16))
def test_every_read_serves_the_committed_menu(
    engine: Engine, make_world: WorldFactory, steps: list[str], seed: int
) -> None:
    """Whatever the order of commands, projections, reads and expiries, a read answers the menu
    the tables hold at that moment, through the cache or not."""
    clock = FakeTime()
    world = make_world(engine, MemoryCache(monotonic=clock))
    items = [world.item(world.category("Drinks"), name) for name in ("Latte", "Tea")]
    world.project()
    for number, step in enumerate(steps):
        item = items[(seed + number) % len(items)]
        if step == "price":
            body = MenuItemUpdate(price_cents=100 + number)
            world.commands.update_item(world.ctx, item, body)
        elif step == "availability":
            flag = (seed >> (number % 16)) & 1 == 1
            world.commands.set_availability(world.ctx, item, AvailabilityUpdate(is_available=flag))
        elif step == "rename":
            world.commands.update_item(world.ctx, item, MenuItemUpdate(name=f"Item {number}"))
        elif step == "project":
            world.project()
        elif step == "expire":
            clock.now += GENERATION_TTL_S
        else:
            assert json.loads(world.served()) == world.truth()
    world.project()
    assert json.loads(world.served()) == world.truth()
