"""`coffeeshop worker`: builds report tasks, off the request path.

The API records a task and rings a bell on the ``coffeeshop.report-tasks`` Redis stream.
Workers share one FastStream consumer group, so each bell reaches one of them; several may
run. Every worker also sweeps the task table every few seconds and takes any task whose bell
was lost or whose worker died (its lease expired): the table, not the stream, is the truth.
Embedded mode has no Redis: the API process runs the sweep itself and rings in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from datetime import timedelta
from typing import Any

from faststream.redis import RedisBroker, StreamSub
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from coffeeshop.api.container import Container
from coffeeshop.api.report_tasks import STREAM, UNCLAIMED_GRACE, ReportTasks
from coffeeshop.events.redis_bus import connect_redis

log = logging.getLogger("coffeeshop.worker")
GROUP = "report-workers"
SWEEP_INTERVAL_S = 2.0
GRACEFUL_STOP_S = 30.0  # a stopping worker finishes the report in hand first


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


async def run_worker(
    container: Container, stop: asyncio.Event, *, sweep_interval_s: float = SWEEP_INTERVAL_S
) -> None:
    """The production worker: the consumer group, and the sweep."""
    url = container.settings.redis_url
    assert url is not None, "the worker needs REDIS_URL"
    name = worker_name()
    tasks = container.report_tasks
    redis = connect_redis(url)
    broker = RedisBroker(url, graceful_timeout=GRACEFUL_STOP_S)

    @broker.subscriber(stream=StreamSub(STREAM, group=GROUP, consumer=name))
    async def on_task(body: dict[str, Any]) -> None:
        task_id = body.get("task_id")
        if isinstance(task_id, str):
            await _run(tasks, task_id, name)

    try:
        await _ensure_group(redis)
        await broker.start()
        log.info("worker %s consuming %s", name, STREAM)
        await sweep_forever(tasks, name, stop, sweep_interval_s)
    finally:
        await broker.stop()
        await redis.aclose()


async def sweep_forever(
    tasks: ReportTasks,
    name: str,
    stop: asyncio.Event,
    interval_s: float,
    unclaimed_after: timedelta = UNCLAIMED_GRACE,
) -> None:
    """Take due tasks until ``stop``. Embedded mode has no bell: it sweeps often, with no
    grace for unclaimed tasks."""
    while not stop.is_set():
        try:
            for task_id in await asyncio.to_thread(tasks.due, unclaimed_after=unclaimed_after):
                await _run(tasks, task_id, name)
        except Exception:
            log.warning("report sweep failed; retrying", exc_info=True)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def _run(tasks: ReportTasks, task_id: str, name: str) -> None:
    status = await asyncio.to_thread(tasks.run, task_id, name)
    if status is not None:
        log.info("report task %s: %s", task_id, status)


async def _ensure_group(redis: Redis) -> None:
    try:
        await redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
