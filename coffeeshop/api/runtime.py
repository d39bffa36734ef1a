"""Long-running read-side processes: relay, projectors and their catch-up loop.

Embedded mode runs them inside the API process on the in-process bus. Production runs
`coffeeshop relay` and `coffeeshop projector` as separate processes over Redis Streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from faststream.redis import RedisBroker, StreamSub
from redis.asyncio import Redis
from redis.exceptions import RedisError

from coffeeshop.api.container import Container
from coffeeshop.api.worker import sweep_forever
from coffeeshop.events.bus import from_message, stream_name
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.memory_bus import InProcessBus
from coffeeshop.events.redis_bus import (
    RedisStreamsPublisher,
    connect_redis,
    decode_batch,
    decode_body,
    ensure_groups,
    forget_idle_consumers,
    parse_batch,
)
from coffeeshop.events.registry import registry
from coffeeshop.events.relay import Relay
from coffeeshop.events.store import EventStore
from coffeeshop.projections import tracking
from coffeeshop.projections.catalog import build_projections
from coffeeshop.projections.projector import ProjectionFailed, Projector, catch_up_together

EMBEDDED_SWEEP_S = 0.5
GRACEFUL_STOP_S = 15.0  # a stopping process waits this long for the batch in hand
log = logging.getLogger("coffeeshop.runtime")
bus_log = logging.getLogger("coffeeshop.bus")  # FastStream's own lines, through our logging
# Messages per read: at 500, the per-batch costs (locks, prefetch, flush) were most of the cost.
BUS_BATCH = 2000
DEAD_CONSUMER_MS = 5 * 60 * 1000  # a live projector reads at least every second


def build_projectors(container: Container, names: Sequence[str] = ()) -> list[Projector]:
    projections = build_projections(container.identity.timezone_of)
    unknown = set(names) - set(projections)
    if unknown:
        raise ValueError(f"unknown projection(s): {', '.join(sorted(unknown))}")
    chosen = [projections[name] for name in names] if names else list(projections.values())
    return [
        Projector(p, container.engine, container.store, container.clock, cache=container.cache)
        for p in chosen
    ]


class ProjectorRunner:
    """Feeds one projector from the bus and the store; a failure stops it, never skips."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector
        self.failed = False

    async def apply(self, events: Sequence[RecordedEvent]) -> None:
        if self.failed:
            raise RuntimeError(f"projection {self.projector.name} is stopped after a failure")
        await self._run(self.projector.apply_batch, events)

    async def _run(self, work: Any, *args: Any) -> None:
        try:
            await asyncio.to_thread(work, *args)
        except ProjectionFailed:
            self.failed = True  # already logged and recorded in projection_states
            raise


async def start_runners(runners: Sequence[ProjectorRunner], store: EventStore) -> None:
    """Mark every projection live, then catch them up from the store together."""
    for runner in runners:
        await asyncio.to_thread(runner.projector.mark, "live")
    # A transient database error here (e.g. a deadlock with the RENAME of a replay that
    # swaps tables right now) is retried by the periodic catch-up.
    await catch_up_runners(runners, store, "start-up catch-up of %s failed; retrying later")


async def catch_up_forever(
    runners: Sequence[ProjectorRunner], store: EventStore, stop: asyncio.Event, interval_s: float
) -> None:
    """Heal from the store whatever the bus lost (a flushed Redis, a crashed relay)."""
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        await catch_up_runners(runners, store)


async def catch_up_runners(
    runners: Sequence[ProjectorRunner],
    store: EventStore,
    warning: str = "catch-up of %s failed; retrying",
) -> None:
    """One read of the store for every projection still running; a failed one stops (it
    is recorded in projection_states), a transient error is logged and retried later."""
    by_projector = {id(runner.projector): runner for runner in runners if not runner.failed}

    def failed(projector: Projector, error: Exception) -> None:
        if isinstance(error, ProjectionFailed):
            by_projector[id(projector)].failed = True
        else:
            log.warning(warning, projector.name, exc_info=error)

    projectors = [runner.projector for runner in by_projector.values()]
    try:
        await asyncio.to_thread(catch_up_together, projectors, store, failed)
    except Exception:
        log.exception("catch-up failed; retrying")


async def run_embedded(container: Container, stop: asyncio.Event) -> None:
    """Relay, projectors and catch-up on the in-process bus, until ``stop`` is set."""
    runners = [ProjectorRunner(p) for p in build_projectors(container)]
    bus = InProcessBus()
    for runner in runners:
        bus.subscribe(_tolerant(runner))
    relay = Relay(container.engine, container.store, bus, idle_interval_s=0.25)
    loop = asyncio.get_running_loop()

    def wake(_restaurant_id: str) -> None:
        loop.call_soon_threadsafe(relay.wake)

    container.store.after_commit.append(wake)
    try:
        await start_runners(runners, container.store)
        await asyncio.gather(
            relay.run(stop),
            catch_up_forever(runners, container.store, stop, container.settings.catch_up_seconds),
            # Report tasks: no Redis, no separate worker; new tasks are found within 0.5 s.
            sweep_forever(
                container.report_tasks,
                "embedded",
                stop,
                EMBEDDED_SWEEP_S,
                unclaimed_after=timedelta(0),
            ),
        )
    finally:
        container.store.after_commit.remove(wake)


def _tolerant(runner: ProjectorRunner) -> Any:
    """In-process delivery: one stopped projection must not hold the others back."""

    async def deliver(events: Sequence[RecordedEvent]) -> None:
        with contextlib.suppress(ProjectionFailed, RuntimeError):
            await runner.apply(events)

    return deliver


async def run_relay(container: Container, stop: asyncio.Event) -> None:
    """The production relay: outbox -> Redis Streams."""
    async with redis_relay(container) as relay:
        await relay.run(stop)


@contextlib.asynccontextmanager
async def redis_relay(container: Container) -> AsyncIterator[Relay]:
    """A relay publishing to Redis Streams (the relay process, the scheduler's outbox sweep)."""
    settings = container.settings
    assert settings.redis_url is not None, "the relay needs REDIS_URL"
    redis = connect_redis(settings.redis_url)
    try:
        publisher = RedisStreamsPublisher(redis, settings.bus_partitions)
        yield Relay(container.engine, container.store, publisher)
    finally:
        await redis.aclose()


async def run_projectors(
    container: Container,
    names: Sequence[str],
    stop: asyncio.Event,
    projectors: Sequence[Projector] | None = None,
    catch_up_interval_s: float | None = None,
) -> None:
    """Production projectors: one consumer group per projection on every partition stream.

    Every ``catch_up_interval_s`` the watcher recreates consumer groups Redis lost (flushed,
    restarted empty) and restarts subscribers that stopped because of it, forgets consumers
    of dead projector processes, and catches up from the store whatever the bus did not bring.
    """
    settings = container.settings
    assert settings.redis_url is not None, "projectors need REDIS_URL"
    chosen = projectors if projectors is not None else build_projectors(container, names)
    runners = [ProjectorRunner(p) for p in chosen]
    redis = connect_redis(settings.redis_url)
    bus = _Subscriptions(settings.redis_url, runners, settings.bus_partitions)
    try:
        await _until_redis_answers(redis, bus.groups, settings.bus_partitions, stop)
        await start_runners(runners, container.store)
        if not stop.is_set():
            await bus.start()
        interval_s = catch_up_interval_s or settings.catch_up_seconds
        await _watch(runners, container.store, redis, bus, stop, interval_s=interval_s)
    finally:
        await bus.stop()
        await redis.aclose()


class _Subscriptions:
    """The FastStream broker and its subscribers, which can be rebuilt: a subscriber whose
    consumer group vanished stops for good (FastStream's StreamGroupNotFoundError)."""

    def __init__(self, url: str, runners: Sequence[ProjectorRunner], partitions: int) -> None:
        self._url = url
        self._runners = runners
        self.partitions = partitions
        self._consumer = f"{socket.gethostname()}-{os.getpid()}"
        self._broker: RedisBroker | None = None
        self._subscribers: list[Any] = []
        self._stopping: set[asyncio.Task[None]] = set()
        self.groups = [runner.projector.name for runner in runners]
        self._decoded = DecodedEvents()

    async def start(self) -> None:
        # On stop, FastStream lets the batches in hand finish (and be acked) first.
        broker = RedisBroker(
            self._url, logger=bus_log, log_level=logging.DEBUG, graceful_timeout=GRACEFUL_STOP_S
        )
        subscribers = []
        for runner in self._runners:
            for partition in range(self.partitions):
                source = StreamSub(
                    stream_name(partition),
                    group=runner.projector.name,
                    consumer=self._consumer,
                    batch=True,
                    max_records=BUS_BATCH,
                    polling_interval=1000,
                )
                subscriber = broker.subscriber(
                    stream=source, parser=parse_batch, decoder=decode_batch
                )
                subscriber(_consumer(runner, self._decoded))
                subscribers.append(subscriber)
        await broker.start()
        self._broker, self._subscribers = broker, subscribers

    @property
    def healthy(self) -> bool:
        return self._broker is not None and all(s.running for s in self._subscribers)

    async def restart(self) -> None:
        """After a Redis fault: a new broker at once. The broken one is stopped in the
        background, since its graceful stop may wait for handlers that cannot finish."""
        if self._broker is not None:
            broken, self._broker = self._broker, None
            self._stopping.add(task := asyncio.create_task(broken.stop()))
            task.add_done_callback(self._stopping.discard)
        await self.start()

    async def stop(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.stop()


async def _until_redis_answers(
    redis: Redis, groups: Sequence[str], partitions: int, stop: asyncio.Event
) -> None:
    """Create the consumer groups, waiting for Redis if it is not up yet (it may start after
    us); the store-based catch-up does not need it meanwhile."""
    delay = 0.5
    while not stop.is_set():
        try:
            await ensure_groups(redis, groups, partitions)
            return
        except (RedisError, OSError):
            log.warning("Redis is not answering; retrying in %.1f s", delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            delay = min(delay * 2, 10.0)


async def _watch(
    runners: Sequence[ProjectorRunner],
    store: EventStore,
    redis: Redis,
    bus: _Subscriptions,
    stop: asyncio.Event,
    *,
    interval_s: float,
) -> None:
    """Keep the bus subscriptions alive and catch up from the store, periodically."""
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        if stop.is_set():
            break
        try:
            created = await ensure_groups(redis, bus.groups, bus.partitions)
            if created or not bus.healthy:
                log.warning(
                    "consumer groups were lost (Redis flushed or restarted); "
                    "restarting the bus subscribers"
                )
                await bus.restart()
            await forget_idle_consumers(redis, bus.groups, bus.partitions, DEAD_CONSUMER_MS)
        except Exception:
            log.warning("could not check the bus subscriptions; Redis unavailable?", exc_info=True)
        await catch_up_runners(runners, store)


class DecodedEvents:
    """Each message reaches every consumer group of this process: decode it once.

    Keyed by the message bytes; the same RecordedEvent (and its payload decoded once,
    which it caches) then serves every projection. Bounded: it starts over when full.
    """

    def __init__(self, capacity: int = 4 * BUS_BATCH) -> None:
        self._capacity = capacity
        self._events: dict[bytes, RecordedEvent] = {}

    def __call__(self, body: Any) -> RecordedEvent:
        if not isinstance(body, bytes):
            return from_message(decode_body(body), registry)
        event = self._events.get(body)
        if event is None:
            if len(self._events) >= self._capacity:
                self._events.clear()
            event = self._events[body] = from_message(decode_body(body), registry)
        return event


def _consumer(runner: ProjectorRunner, decoded: DecodedEvents) -> Any:
    async def consume(bodies: list[Any]) -> None:
        await runner.apply([decoded(body) for body in bodies])

    consume.__name__ = f"project_{runner.projector.name}"
    return consume


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    state: str  # live | rebuilding | failed | idle (never started)
    applied: int
    head: int
    lag_events: int
    lag_seconds: float
    error: str | None
    rebuild: tracking.RebuildProgress | None = None
    verification: tracking.Verification | None = None


def projection_report(container: Container) -> list[ProjectionStatus]:
    """Each projection's state, total applied position, store head, lag, rebuild, last verify."""
    heads = container.store.heads()
    head_total = sum(heads.values())
    now = container.clock()
    report = []
    with container.engine.connect() as conn:
        states = tracking.states(conn)
        rebuilds = {r.projection: r for r in tracking.rebuilds(conn) if r.purpose == "replay"}
        verified = tracking.verifications(conn)
        for projector in build_projectors(container):
            positions = tracking.all_checkpoints(conn, projector.projection.checkpoints)
            behind = {rid: head for rid, head in heads.items() if head > positions.get(rid, 0)}
            lag_events = sum(head - positions.get(rid, 0) for rid, head in behind.items())
            oldest = container.store.oldest_unapplied(
                {rid: positions.get(rid, 0) for rid in behind}
            )
            state, error = states.get(projector.name, ("idle", None))
            rebuild = rebuilds.get(projector.name)
            if rebuild is not None and state != "failed":
                state = "rebuilding"
            report.append(
                ProjectionStatus(
                    name=projector.name,
                    state=state,
                    applied=sum(min(positions.get(rid, 0), head) for rid, head in heads.items()),
                    head=head_total,
                    lag_events=lag_events,
                    lag_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
                    error=error,
                    rebuild=rebuild,
                    verification=verified.get(projector.name),
                )
            )
    return report
