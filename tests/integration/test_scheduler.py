"""The scheduler: close-of-day in each restaurant's own time zone across DST changes, one
acting scheduler among several, runs idempotent by key, and each job doing its work."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from redis.asyncio import Redis
from sqlalchemy import func, insert, select, update

from coffeeshop.api.container import Container, build_container
from coffeeshop.api.identity.schemas import SignupCreate
from coffeeshop.api.report_tasks import report_tasks
from coffeeshop.api.scheduler import LOCK_KEY, Jobs, Scheduler, SchedulerLock, close_of_day_trigger
from coffeeshop.events.memory_bus import InProcessBus
from coffeeshop.events.relay import Relay
from coffeeshop.events.schema import idempotency_keys, outbox
from tests.conftest import REDIS_URL, make_settings
from tests.integration.rebuild_helpers import project_live, trade


def _fires(zone: str, at: str, since: datetime, count: int) -> list[datetime]:
    trigger, fires, previous, now = close_of_day_trigger(zone, at), [], None, since
    for _ in range(count):
        previous = now = trigger.get_next_fire_time(previous, now)
        fires.append(now.astimezone(UTC))
    return fires


def test_close_of_day_follows_berlin_clocks_across_the_march_change() -> None:
    fires = _fires("Europe/Berlin", "23:30", datetime(2026, 3, 27, 12, tzinfo=UTC), 3)
    assert [f.strftime("%m-%d %H:%M") for f in fires] == [
        "03-27 22:30",  # CET, UTC+1
        "03-28 22:30",
        "03-29 21:30",  # CEST from 29 March: an hour earlier in UTC, 23:30 on the wall
    ]


def test_a_skipped_local_time_still_fires_and_a_repeated_one_fires_twice() -> None:
    spring = _fires("Europe/Berlin", "02:30", datetime(2026, 3, 28, 12, tzinfo=UTC), 2)
    assert [f.strftime("%m-%d %H:%M") for f in spring] == ["03-29 01:30", "03-30 00:30"]
    # 02:30 happens twice on 25 October: the trigger fires at both, the run key (restaurant
    # and local date) makes the second one do nothing (see the next tests).
    autumn = _fires("Europe/Berlin", "02:30", datetime(2026, 10, 24, 12, tzinfo=UTC), 3)
    assert [f.strftime("%m-%d %H:%M") for f in autumn] == [
        "10-25 00:30",
        "10-25 01:30",
        "10-26 01:30",
    ]
    new_york = _fires("America/New_York", "23:30", datetime(2026, 3, 7, 12, tzinfo=UTC), 2)
    assert [f.strftime("%m-%d %H:%M") for f in new_york] == ["03-08 04:30", "03-09 03:30"]


@pytest.fixture
def shop(own_database_url: str) -> Iterator[Container]:
    container = build_container(
        make_settings(
            database_url=own_database_url, lag_alert_seconds=0.001, outbox_stale_seconds=1
        )
    )
    yield container
    container.close()


def _signup(shop: Container, zone: str) -> str:
    body = SignupCreate(
        restaurant_name="Scheduled Café",
        email=f"owner-{uuid.uuid4().hex[:8]}@example.com",
        password="correct horse battery staple",
        timezone=zone,
    )
    return shop.identity.signup(body).restaurant_id


def test_two_schedulers_only_one_acts_and_a_dead_ones_lock_lapses() -> None:
    async def scenario() -> list[bool]:
        client = Redis.from_url(REDIS_URL)
        await client.delete(LOCK_KEY)
        first, second = SchedulerLock(client, "first"), SchedulerLock(client, "second")
        seen = [
            await first.acquire_or_renew(),
            await second.acquire_or_renew(),
            await first.acquire_or_renew(),  # renewal
        ]
        await client.pexpire(LOCK_KEY, 1)  # the first one died: its lock runs out
        await asyncio.sleep(0.05)
        seen += [await second.acquire_or_renew(), await first.acquire_or_renew()]
        await second.release()
        seen.append(await first.acquire_or_renew())
        await client.delete(LOCK_KEY)
        await client.aclose()
        return seen

    assert asyncio.run(scenario()) == [True, False, True, True, False, True]


def test_close_of_day_runs_once_per_restaurant_and_local_day(shop: Container) -> None:
    restaurant = _signup(shop, "Pacific/Auckland")
    one, two = Jobs(shop), Jobs(shop)  # as if two schedulers both fired

    first = one.close_of_day(restaurant)
    second = two.close_of_day(restaurant)

    assert first is not None
    assert second is None
    with shop.engine.connect() as conn:
        rows = conn.execute(
            select(report_tasks.c.day).where(report_tasks.c.restaurant_id == restaurant)
        ).all()
    local_today = datetime.now(UTC).astimezone(ZoneInfo("Pacific/Auckland"))
    assert [row.day for row in rows] == [local_today.date()]


def test_a_standing_by_scheduler_runs_nothing(shop: Container) -> None:
    restaurant = _signup(shop, "UTC")
    scheduler = Scheduler(shop, SchedulerLock(Redis.from_url(REDIS_URL), "standby"), _nothing)
    run = scheduler._guarded("close-of-day", scheduler.jobs.close_of_day)

    asyncio.run(run(restaurant))
    assert _tasks(shop, restaurant) == 0
    scheduler.holding = True
    asyncio.run(run(restaurant))
    assert _tasks(shop, restaurant) == 1


def test_restaurants_get_their_close_of_day_job_in_their_zone(shop: Container) -> None:
    berlin = _signup(shop, "Europe/Berlin")
    scheduler = Scheduler(shop, SchedulerLock(Redis.from_url(REDIS_URL)), _nothing)
    scheduler.add_restaurants_now()
    job = scheduler.scheduler.get_job(f"close-of-day:{berlin}")
    assert job is not None
    assert str(job.trigger.timezone) == "Europe/Berlin"


def test_the_lag_check_names_lagging_projections(
    shop: Container, caplog: pytest.LogCaptureFixture
) -> None:
    trade(shop, orders=3, seed=61)
    time.sleep(0.01)
    catcher = _Catcher()
    logging.getLogger("coffeeshop.scheduler").addHandler(catcher)
    try:
        lagging = Jobs(shop).lag_check()
    finally:
        logging.getLogger("coffeeshop.scheduler").removeHandler(catcher)
    assert set(lagging) == {"orders", "order_history", "menu", "daily_sales"}
    assert any("behind the store" in message for message in catcher.messages)
    project_live(shop)
    assert Jobs(shop).lag_check() == []


def test_the_nightly_verify_runs_once_a_night(shop: Container) -> None:
    trade(shop, orders=4, seed=62)
    project_live(shop)
    jobs = Jobs(shop)
    today = datetime.now(UTC).date()
    assert jobs.verify(today) == 0
    assert jobs.verify(today) is None  # already done tonight


def test_the_outbox_sweep_publishes_what_no_relay_took(shop: Container) -> None:
    trade(shop, orders=2, seed=63)
    with shop.engine.connect() as conn:
        waiting = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    assert waiting > 0
    time.sleep(1.1)  # older than OUTBOX_STALE_SECONDS=1
    bus = InProcessBus()
    delivered: list[int] = []

    async def count(events: object) -> None:
        delivered.append(len(events))  # type: ignore[arg-type]

    bus.subscribe(count)
    relay = Relay(shop.engine, shop.store, bus)
    scheduler = Scheduler(shop, SchedulerLock(Redis.from_url(REDIS_URL)), relay.relay_once)
    scheduler.holding = True

    asyncio.run(scheduler._sweep_outbox())

    assert sum(delivered) == waiting
    with shop.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 0


class _Catcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def _nothing() -> int:
    return 0


def _tasks(shop: Container, restaurant: str) -> int:
    with shop.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(report_tasks)
                .where(report_tasks.c.restaurant_id == restaurant)
            ).scalar_one()
        )


def test_redis_is_reachable_for_these_tests() -> None:
    assert redis.Redis.from_url(REDIS_URL).ping()


def test_the_purge_forgets_old_keys_and_old_finished_tasks(shop: Container) -> None:
    restaurant = _signup(shop, "UTC")
    old, _ = shop.report_tasks.request(restaurant, datetime(2026, 1, 1).date())
    fresh, _ = shop.report_tasks.request(restaurant, datetime(2026, 1, 2).date())
    for task in (old, fresh):
        shop.report_tasks.run(task.task_id, "w")
    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=31)
    with shop.engine.begin() as conn:
        conn.execute(
            update(report_tasks)
            .where(report_tasks.c.task_id == old.task_id)
            .values(finished_at=long_ago)
        )
        conn.execute(  # a POS retry key from a month ago, as the store wrote it
            insert(idempotency_keys).values(
                restaurant_id=restaurant,
                idempotency_key="till-1-order-42",
                request_hash="0" * 64,
                status_code=201,
                response={"id": "x", "version": 1, "position": 1},
                stream_id=str(uuid.uuid4()),
                created_at=long_ago,
            )
        )

    keys, tasks = Jobs(shop).purge()

    assert tasks == 1
    assert shop.report_tasks.get(restaurant, old.task_id) is None
    assert shop.report_tasks.get(restaurant, fresh.task_id) is not None
    with shop.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(idempotency_keys)).scalar_one() == 0
    assert keys == 1
