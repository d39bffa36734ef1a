"""Relay and bus: outbox -> bus -> projector, in-process and through real Redis Streams."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

import pytest
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ResponseError
from sqlalchemy import Engine, func, select

from coffeeshop.api.container import build_container
from coffeeshop.api.runtime import run_projectors, run_relay
from coffeeshop.events.bus import partition_of
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.memory_bus import InProcessBus
from coffeeshop.events.redis_bus import forget_idle_consumers
from coffeeshop.events.registry import registry
from coffeeshop.events.relay import Relay
from coffeeshop.events.schema import outbox
from coffeeshop.events.store import EventStore
from coffeeshop.projections import tracking
from coffeeshop.projections.projector import Projector
from tests.conftest import REDIS_URL, make_settings
from tests.integration.read_side_helpers import (
    append_categories,
    applied_seqs,
    logging_projection,
    metadata,
)


def _reading(redis: Redis, group: str, partitions: int) -> bool:
    """Every partition's group has a consumer: a subscriber is reading it."""
    try:
        return all(
            redis.xinfo_consumers(f"coffeeshop.events.{p}", group) for p in range(partitions)
        )
    except ResponseError:
        return False


def _outbox_rows(engine: Engine, restaurant_id: str) -> int:
    with engine.connect() as conn:
        query = select(func.count()).where(outbox.c.restaurant_id == restaurant_id)
        return int(conn.execute(query).scalar_one())


def test_relay_publishes_every_committed_event_then_empties_the_outbox(engine: Engine) -> None:
    store = EventStore(engine, registry)
    restaurants = [str(uuid.uuid4()) for _ in range(3)]
    for restaurant in restaurants:
        append_categories(store, restaurant, ["a", "b"])
    received: list[RecordedEvent] = []
    bus = InProcessBus()

    async def collect(events: Sequence[RecordedEvent]) -> None:
        received.extend(events)

    bus.subscribe(collect)
    relay = Relay(engine, store, bus, batch_size=4)

    async def drain() -> None:
        while await relay.relay_once():
            pass

    asyncio.run(drain())
    for restaurant in restaurants:
        seqs = [e.seq for e in received if e.restaurant_id == restaurant]
        assert seqs == [1, 2, 3]
        assert _outbox_rows(engine, restaurant) == 0


def test_a_failed_publish_keeps_the_outbox_rows(engine: Engine) -> None:
    store = EventStore(engine, registry)
    restaurant = str(uuid.uuid4())
    append_categories(store, restaurant, ["a"])

    class BrokenBus:
        async def publish(self, events: Sequence[RecordedEvent]) -> None:
            raise ConnectionError("bus down")

    relay = Relay(engine, store, BrokenBus())
    with pytest.raises(ConnectionError):
        asyncio.run(relay.relay_once())
    assert _outbox_rows(engine, restaurant) == 2


def _wait_until(predicate: object, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting for the read side"
        time.sleep(0.05)


@pytest.mark.usefixtures("mysql_engine")
def test_events_flow_through_redis_streams_and_survive_a_flush() -> None:
    """Relay and projector over real Redis; after FLUSHDB (streams and groups gone) the
    projector recreates its group and catch-up fills what the bus lost."""
    settings = make_settings(bus_partitions=2)
    container = build_container(settings)
    metadata.create_all(container.engine)
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    name = f"t{uuid.uuid4().hex[:12]}"
    projector = Projector(
        logging_projection(container.engine, name), container.engine, container.store
    )
    restaurants = [str(uuid.uuid4()) for _ in range(4)]
    while {partition_of(r, 2) for r in restaurants} != {0, 1}:  # traffic on both partitions
        restaurants = [str(uuid.uuid4()) for _ in range(4)]

    async def scenario() -> None:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(run_relay(container, stop)),
            asyncio.create_task(
                run_projectors(container, [], stop, projectors=[projector], catch_up_interval_s=0.5)
            ),
        ]
        try:
            await asyncio.sleep(0.5)
            for restaurant in restaurants:
                await asyncio.to_thread(append_categories, container.store, restaurant, ["a", "b"])
            await asyncio.to_thread(_wait_until, lambda: _all_applied(restaurants, 3))
            assert redis.xlen("coffeeshop.events.0") + redis.xlen("coffeeshop.events.1") >= 12

            redis.flushdb()
            for restaurant in restaurants:
                await asyncio.to_thread(append_categories, container.store, restaurant, ["c"])
            await asyncio.to_thread(_wait_until, lambda: _all_applied(restaurants, 5))
            # Not only catch-up: the subscribers were restarted and the bus delivers again
            # (Redis creates a group's consumer when it first delivers to it).
            for restaurant in restaurants:
                await asyncio.to_thread(append_categories, container.store, restaurant, ["d"])
            await asyncio.to_thread(_wait_until, lambda: _reading(redis, name, partitions=2))
            await asyncio.to_thread(_wait_until, lambda: _all_applied(restaurants, 7))
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    def _all_applied(ids: list[str], count: int) -> bool:
        return all(
            applied_seqs(container.engine, name, rid) == list(range(1, count + 1)) for rid in ids
        )

    try:
        asyncio.run(scenario())
        with container.engine.connect() as conn:
            assert tracking.states(conn)[name][0] == "live"
    finally:
        container.close()
        redis.close()


@pytest.mark.redis
def test_consumers_of_dead_projectors_are_forgotten_with_their_pending_entries() -> None:
    redis = Redis.from_url(REDIS_URL)
    stream, group = "coffeeshop.events.0", f"g{uuid.uuid4().hex[:8]}"

    async def forget(*idle_ms: int) -> list[int]:
        client = AsyncRedis.from_url(REDIS_URL)
        try:
            return [await forget_idle_consumers(client, [group], 1, idle) for idle in idle_ms]
        finally:
            await client.aclose()

    try:
        redis.xgroup_create(stream, group, id="$", mkstream=True)
        redis.xadd(stream, {"body": "x"})
        redis.xreadgroup(group, "dead-projector", {stream: ">"}, count=10)  # never acked
        assert redis.xpending(stream, group)["pending"] == 1

        # Recently active: kept. Idle beyond the limit: forgotten with its pending entry.
        assert asyncio.run(forget(60_000, 0)) == [0, 1]
        assert redis.xinfo_consumers(stream, group) == []
        assert redis.xpending(stream, group)["pending"] == 0
    finally:
        redis.xgroup_destroy(stream, group)
        redis.close()
