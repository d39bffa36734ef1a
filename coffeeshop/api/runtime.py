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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from faststream.redis import RedisBroker, StreamSub
from redis.asyncio import Redis

from coffeeshop.api.container import Container
from coffeeshop.events.bus import from_message, stream_name
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.memory_bus import InProcessBus
from coffeeshop.events.redis_bus import RedisStreamsPublisher, decode_body, ensure_groups
from coffeeshop.events.registry import registry
from coffeeshop.events.relay import Relay
from coffeeshop.projections import tracking
from coffeeshop.projections.catalog import build_projections
from coffeeshop.projections.projector import ProjectionFailed, Projector

log = logging.getLogger("coffeeshop.runtime")
CATCH_UP_INTERVAL_S = 5.0
BUS_BATCH = 500


def build_projectors(container: Container, names: Sequence[str] = ()) -> list[Projector]:
    projections = build_projections(container.identity.timezone_of)
    unknown = set(names) - set(projections)
    if unknown:
        raise ValueError(f"unknown projection(s): {', '.join(sorted(unknown))}")
    chosen = [projections[name] for name in names] if names else list(projections.values())
    return [Projector(p, container.engine, container.store, container.clock) for p in chosen]


class ProjectorRunner:
    """Feeds one projector from the bus and the store; a failure stops it, never skips."""

    def __init__(self, projector: Projector) -> None:
        self.projector = projector
        self.failed = False

    async def apply(self, events: Sequence[RecordedEvent]) -> None:
        if self.failed:
            raise RuntimeError(f"projection {self.projector.name} is stopped after a failure")
        await self._run(self.projector.apply_batch, events)

    async def catch_up(self) -> None:
        if not self.failed:
            await self._run(self.projector.catch_up)

    async def _run(self, work: Any, *args: Any) -> None:
        try:
            await asyncio.to_thread(work, *args)
        except ProjectionFailed:
            self.failed = True  # already logged and recorded in projection_states
            raise

    async def start(self) -> None:
        await asyncio.to_thread(self.projector.mark, "live")
        with contextlib.suppress(ProjectionFailed):
            await self.catch_up()


async def catch_up_forever(
    runners: Sequence[ProjectorRunner], stop: asyncio.Event, interval_s: float
) -> None:
    """Heal from the store whatever the bus lost (a flushed Redis, a crashed relay)."""
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        await _catch_up_all(runners)


async def _catch_up_all(runners: Sequence[ProjectorRunner]) -> None:
    for runner in runners:
        try:
            await runner.catch_up()
        except ProjectionFailed:
            pass  # recorded; the projection stays stopped until restarted
        except Exception:
            log.exception("catch-up of %s failed; retrying", runner.projector.name)


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
        for runner in runners:
            await runner.start()
        await asyncio.gather(relay.run(stop), catch_up_forever(runners, stop, CATCH_UP_INTERVAL_S))
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
    settings = container.settings
    assert settings.redis_url is not None, "the relay needs REDIS_URL"
    broker = RedisBroker(settings.redis_url)
    redis = Redis.from_url(settings.redis_url)
    await broker.connect()
    try:
        publisher = RedisStreamsPublisher(broker, redis, settings.bus_partitions)
        relay = Relay(container.engine, container.store, publisher)
        await relay.run(stop)
    finally:
        await broker.stop()
        await redis.aclose()


async def run_projectors(
    container: Container,
    names: Sequence[str],
    stop: asyncio.Event,
    projectors: Sequence[Projector] | None = None,
    catch_up_interval_s: float = CATCH_UP_INTERVAL_S,
) -> None:
    """Production projectors: one consumer group per projection on every partition stream."""
    settings = container.settings
    assert settings.redis_url is not None, "projectors need REDIS_URL"
    chosen = projectors if projectors is not None else build_projectors(container, names)
    runners = [ProjectorRunner(p) for p in chosen]
    broker = RedisBroker(settings.redis_url)
    redis = Redis.from_url(settings.redis_url)
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    groups = [runner.projector.name for runner in runners]
    await ensure_groups(redis, groups, settings.bus_partitions)
    for runner in runners:
        for partition in range(settings.bus_partitions):
            source = StreamSub(
                stream_name(partition),
                group=runner.projector.name,
                consumer=consumer,
                batch=True,
                max_records=BUS_BATCH,
                polling_interval=1000,
            )
            broker.subscriber(stream=source)(_consumer(runner))
    for runner in runners:
        await runner.start()
    await broker.start()
    try:
        await _watch(runners, redis, settings.bus_partitions, stop, interval_s=catch_up_interval_s)
    finally:
        await broker.stop()
        await redis.aclose()


async def _watch(
    runners: Sequence[ProjectorRunner],
    redis: Redis,
    partitions: int,
    stop: asyncio.Event,
    *,
    interval_s: float,
) -> None:
    """Recreate vanished consumer groups and catch up from the store, periodically."""
    groups = [runner.projector.name for runner in runners]
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        try:
            await ensure_groups(redis, groups, partitions)
        except Exception:
            log.warning("could not ensure consumer groups; Redis unavailable?", exc_info=True)
        await _catch_up_all(runners)


def _consumer(runner: ProjectorRunner) -> Any:
    async def consume(bodies: list[Any]) -> None:
        events = [from_message(decode_body(body), registry) for body in bodies]
        await runner.apply(events)

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
