"""`coffeeshop scheduler`: time-based work, with APScheduler 3.11 (AsyncIOScheduler).

Jobs:

- ``close-of-day:<restaurant>``: at ``CLOSE_OF_DAY`` (default 23:30) in the restaurant's
  own time zone (a cron trigger in that zone, so DST changes move it with the clocks),
  request that local day's full report (a report task, built by the workers);
- ``lag-check``, every minute: each projection's lag as a log line when over
  ``LAG_ALERT_SECONDS`` (the figures themselves are on /metrics);
- ``verify``, nightly at ``VERIFY_AT`` UTC: ``coffeeshop verify`` of every projection; drift
  is logged as an error (and so reaches Sentry), the result is on /metrics;
- ``outbox-sweep``, every minute: events waiting in the outbox longer than
  ``OUTBOX_STALE_SECONDS`` mean no relay is running; they are published from here;
- ``purge``, hourly: idempotency keys older than their 24 hours, report tasks finished
  more than 30 days ago;
- ``restaurants``, every 5 minutes: adds the close-of-day job of new restaurants.

Exactly one scheduler acts at a time, even if two are started: each run needs the
``coffeeshop:scheduler`` lock in Redis, held with an expiry and renewed while alive, so a
dead scheduler's lock lapses and a standby takes over. Runs are also idempotent by key
(``job_runs``: job and restaurant + date, or job and date), so a run is never repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import Counter
from redis.asyncio import Redis
from sqlalchemy import Column, MetaData, String, Table, func, insert, select
from sqlalchemy.exc import IntegrityError

from coffeeshop.api.container import Container
from coffeeshop.api.identity.tables import restaurants
from coffeeshop.api.runtime import build_projectors, projection_report, redis_relay
from coffeeshop.events.clock import naive_utc
from coffeeshop.events.redis_bus import connect_redis
from coffeeshop.events.schema import Timestamp, outbox
from coffeeshop.projections import shadow
from coffeeshop.projections.verify import Verifier

log = logging.getLogger("coffeeshop.scheduler")
metadata = MetaData()
LOCK_KEY = "coffeeshop:scheduler"
LOCK_TTL_S = 30
RENEW_EVERY_S = 10
# A scheduler (re)started up to 10 minutes late still runs the day's job, once.
MISFIRE_GRACE_S = 600

JOB_RUNS = Counter(
    "coffeeshop_job_runs", "Scheduled job runs by job and outcome", ["job", "outcome"]
)

job_runs = Table(
    "job_runs",
    metadata,
    Column("job", String(64), primary_key=True),
    Column("run_key", String(100), primary_key=True),
    Column("started_at", Timestamp, nullable=False),
)


def close_of_day_trigger(zone: str, at: str) -> CronTrigger:
    """Every day at ``at`` (HH:MM) local time in ``zone``, following the clocks: a time they
    skip (02:30 on the spring change in Berlin) fires an hour later in wall-clock time, and a
    time that happens twice (autumn) fires twice; the job's run key (restaurant and local
    date) makes the second one do nothing."""
    hour, minute = (int(part) for part in at.split(":"))
    return CronTrigger(hour=hour, minute=minute, timezone=ZoneInfo(zone))


class SchedulerLock:
    """A Redis key with an expiry: whoever set it acts; it lapses if its holder dies."""

    def __init__(self, redis: Redis, owner: str | None = None) -> None:
        self._redis = redis
        self.owner = owner or str(uuid.uuid4())

    async def acquire_or_renew(self) -> bool:
        try:
            if await self._redis.set(LOCK_KEY, self.owner, nx=True, ex=LOCK_TTL_S):
                return True
            if _text(await self._redis.get(LOCK_KEY)) == self.owner:
                await self._redis.expire(LOCK_KEY, LOCK_TTL_S)
                return True
        except Exception:
            log.warning("scheduler lock unavailable (Redis down?); not acting", exc_info=True)
        return False

    async def release(self) -> None:
        with contextlib.suppress(Exception):
            if _text(await self._redis.get(LOCK_KEY)) == self.owner:
                await self._redis.delete(LOCK_KEY)


class Jobs:
    """The jobs themselves (sync; the scheduler runs them in threads)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        settings = container.settings
        self.close_at = settings.close_of_day
        self.lag_alert_s = settings.lag_alert_seconds
        self.outbox_stale = timedelta(seconds=settings.outbox_stale_seconds)

    def once(self, job: str, key: str) -> bool:
        """Record a run of ``job`` for ``key``; False if one was recorded before."""
        try:
            with self.container.engine.begin() as conn:
                conn.execute(
                    insert(job_runs).values(
                        job=job, run_key=key, started_at=naive_utc(self.container.clock())
                    )
                )
        except IntegrityError:
            return False
        return True

    def close_of_day(self, restaurant_id: str) -> str | None:
        """Request the report of the local day that is closing; the task id, or None when
        this restaurant's day was already requested."""
        zone = self.container.identity.timezone_of(restaurant_id)
        day = self.container.clock().astimezone(ZoneInfo(zone)).date()
        if not self.once("close-of-day", f"{restaurant_id}/{day.isoformat()}"):
            return None
        task, created = self.container.report_tasks.request(restaurant_id, day)
        if created:
            self.container.report_bell(task.task_id)
        return task.task_id

    def lag_check(self) -> list[str]:
        """Projections lagging more than the threshold (each logged as a warning)."""
        lagging = []
        for row in projection_report(self.container):
            if row.lag_seconds > self.lag_alert_s:
                lagging.append(row.name)
                log.warning(
                    "projection %s is %.0f s (%d events) behind the store",
                    row.name,
                    row.lag_seconds,
                    row.lag_events,
                )
        return lagging

    def verify(self, today: date | None = None) -> int | None:
        """Verify every projection once a night; the rows of drift, or None if already run."""
        day = today or self.container.clock().date()
        if not self.once("verify", day.isoformat()):
            return None
        container = self.container
        projections = [p.projection for p in build_projectors(container)]
        with shadow.exclusive(container.engine, "verify"):
            results = Verifier(container.engine, container.store, container.clock).verify(
                projections
            )
        drift = 0
        for result in results:
            if not result.clean:
                drift += result.drift_rows
                log.error("verify found drift: %s", result.summary())
        return drift

    def purge(self) -> tuple[int, int]:
        """Idempotency keys past their 24 h, and report tasks finished 30 days ago."""
        keys = self.container.store.purge_idempotency_keys()
        tasks = self.container.report_tasks.purge()
        if keys or tasks:
            log.info("purged %d idempotency keys and %d report tasks", keys, tasks)
        return keys, tasks

    def stale_outbox(self) -> int:
        """Events in the outbox for longer than the threshold (no relay took them)."""
        limit = naive_utc(self.container.clock()) - self.outbox_stale
        with self.container.engine.connect() as conn:
            count = conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.created_at < limit)
            ).scalar_one()
        return int(count)

    def restaurant_ids(self) -> list[str]:
        with self.container.engine.connect() as conn:
            return [str(r) for r in conn.execute(select(restaurants.c.id)).scalars()]


Publish = Callable[[], Awaitable[int]]


class Scheduler:
    def __init__(self, container: Container, lock: SchedulerLock, publish: Publish) -> None:
        self.jobs = Jobs(container)
        self.lock = lock
        self._publish = publish
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.holding = False

    def plan(self) -> None:
        add = self.scheduler.add_job
        add(
            self._guarded("lag-check", self.jobs.lag_check),
            IntervalTrigger(minutes=1),
            id="lag-check",
        )
        hour, minute = (int(p) for p in self.jobs.container.settings.verify_at.split(":"))
        add(
            self._guarded("verify", self.jobs.verify),
            CronTrigger(hour=hour, minute=minute, timezone="UTC"),
            id="verify",
            misfire_grace_time=MISFIRE_GRACE_S,
            coalesce=True,
        )
        add(self._sweep_outbox, IntervalTrigger(minutes=1), id="outbox-sweep")
        add(self._guarded("purge", self.jobs.purge), IntervalTrigger(hours=1), id="purge")
        add(self.add_restaurants, IntervalTrigger(minutes=5), id="restaurants")
        self.add_restaurants_now()

    def add_restaurants_now(self) -> None:
        for restaurant_id in self.jobs.restaurant_ids():
            job_id = f"close-of-day:{restaurant_id}"
            if self.scheduler.get_job(job_id) is None:
                zone = self.jobs.container.identity.timezone_of(restaurant_id)
                self.scheduler.add_job(
                    self._guarded("close-of-day", self.jobs.close_of_day),
                    close_of_day_trigger(zone, self.jobs.close_at),
                    args=[restaurant_id],
                    id=job_id,
                    misfire_grace_time=MISFIRE_GRACE_S,
                    coalesce=True,
                )

    async def add_restaurants(self) -> None:
        await asyncio.to_thread(self.add_restaurants_now)

    def _guarded(self, name: str, job: Callable[..., Any]) -> Callable[..., Awaitable[None]]:
        async def run(*args: Any) -> None:
            if not self.holding:
                JOB_RUNS.labels(name, "standby").inc()
                return
            try:
                await asyncio.to_thread(job, *args)
            except Exception:
                JOB_RUNS.labels(name, "error").inc()
                log.exception("scheduled job %s failed", name)
                return
            JOB_RUNS.labels(name, "ok").inc()

        return run

    async def _sweep_outbox(self) -> None:
        if not self.holding:
            return
        stale = await asyncio.to_thread(self.jobs.stale_outbox)
        if not stale:
            JOB_RUNS.labels("outbox-sweep", "ok").inc()
            return
        log.warning("%d events waited in the outbox too long; is the relay down?", stale)
        published = 0
        while (sent := await self._publish()) > 0:
            published += sent
        JOB_RUNS.labels("outbox-sweep", "republished").inc()
        log.info("outbox sweep published %d events", published)

    async def run(self, stop: asyncio.Event) -> None:
        self.plan()
        self.scheduler.start()
        try:
            while not stop.is_set():
                held = await self.lock.acquire_or_renew()
                if held != self.holding:
                    log.info("scheduler %s %s", self.lock.owner, "acts" if held else "stands by")
                self.holding = held
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), RENEW_EVERY_S)
        finally:
            self.scheduler.shutdown(wait=False)
            await self.lock.release()


async def run_scheduler(container: Container, stop: asyncio.Event) -> None:
    """The production scheduler process (`coffeeshop scheduler`)."""
    assert container.settings.redis_url is not None, "the scheduler needs REDIS_URL"
    redis = connect_redis(container.settings.redis_url)
    try:
        async with redis_relay(container) as relay:
            await Scheduler(container, SchedulerLock(redis), relay.relay_once).run(stop)
    finally:
        await redis.aclose()


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
