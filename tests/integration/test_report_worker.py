"""`coffeeshop worker` for real, on MariaDB + Redis: tasks rung on the stream are built by
one of the workers; a task whose worker died (its lease ran out) is taken again by the
sweep; a task that keeps failing ends `failed` with its reason; two workers never build the
same task twice."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import Engine, select, update

from coffeeshop.api.container import Container, build_container
from coffeeshop.api.report_tasks import DONE, FAILED, LEASE, MAX_ATTEMPTS, ReportTasks, report_tasks
from coffeeshop.events.clock import naive_utc, utc_now
from tests.conftest import MYSQL_URL, REDIS_URL, make_settings
from tests.faults.conftest import free_port, service_env, spawn, tail

DAY = date(2026, 3, 29)


@pytest.fixture
def shop(mysql_engine: Engine) -> Iterator[Container]:
    redis.Redis.from_url(REDIS_URL).delete("coffeeshop.report-tasks")
    container = build_container(make_settings())
    yield container
    container.close()


def _restaurant() -> str:
    return str(uuid.uuid4())


class Worker:
    def __init__(self, workdir: Path, name: str, metrics_port: int | None = None) -> None:
        self.log = workdir / f"{name}.log"
        extra = {"METRICS_PORT": str(metrics_port)} if metrics_port else {}
        env = service_env(MYSQL_URL, REDIS_URL, LOG_LEVEL="INFO", **extra)
        self.process = spawn(["worker"], env, workdir, self.log)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while b"consuming" not in self.log.read_bytes():
            assert self.process.poll() is None, tail(self.log)
            assert time.monotonic() < deadline, tail(self.log)
            time.sleep(0.1)

    @property
    def name_prefix(self) -> str:
        return f"-{self.process.pid}"

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait(10)


def _wait(shop: Container, restaurant: str, task_id: str, timeout_s: float = 20) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        task = shop.report_tasks.get(restaurant, task_id)
        assert task is not None
        if task.status != "processing" or time.monotonic() > deadline:
            return task.status
        time.sleep(0.1)


def _claimed_by(engine: Engine, task_id: str) -> tuple[str, int]:
    with engine.connect() as conn:
        row = conn.execute(
            select(report_tasks.c.claimed_by, report_tasks.c.attempts).where(
                report_tasks.c.task_id == task_id
            )
        ).one()
    return str(row.claimed_by), int(row.attempts)


def test_a_rung_task_is_built_by_a_worker_and_it_stops_cleanly(
    shop: Container, workers: list[Worker], tmp_path: Path
) -> None:
    port = free_port()
    worker = Worker(tmp_path, "one", metrics_port=port)
    workers.append(worker)
    worker.wait_ready()
    restaurant = _restaurant()

    task, created = shop.report_tasks.request(restaurant, DAY)
    shop.report_bell(task.task_id)

    assert created
    assert _wait(shop, restaurant, task.task_id) == DONE
    claimed_by, attempts = _claimed_by(shop.engine, task.task_id)
    assert claimed_by.endswith(worker.name_prefix)
    assert attempts == 1
    done = shop.report_tasks.get(restaurant, task.task_id)
    assert done is not None
    assert done.result is not None
    assert done.result["summary"]["date"] == DAY.isoformat()
    assert done.csv is not None
    assert done.csv.startswith("order_id,placed_at,")
    # Its own counter (it may also have swept up tasks other tests left in this database).
    deadline = time.monotonic() + 10  # counted just after the task's row says done
    while _done_count(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert worker.stop() == 0, tail(worker.log)


def _done_count(page: str) -> float:
    prefix = 'coffeeshop_report_tasks_total{outcome="done"} '
    lines = [line for line in page.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


def test_a_task_whose_worker_died_is_taken_again(
    shop: Container, workers: list[Worker], tmp_path: Path
) -> None:
    restaurant = _restaurant()
    task, _ = shop.report_tasks.request(restaurant, DAY)
    # What a worker killed mid-build leaves behind: its claim, and no result.
    assert shop.report_tasks.claim(task.task_id, "killed-worker") is not None
    stale = naive_utc(utc_now()) - LEASE - timedelta(seconds=1)
    with shop.engine.begin() as conn:
        conn.execute(
            update(report_tasks)
            .where(report_tasks.c.task_id == task.task_id)
            .values(claimed_at=stale)
        )
    worker = Worker(tmp_path, "rescuer")
    workers.append(worker)
    worker.wait_ready()

    assert _wait(shop, restaurant, task.task_id) == DONE  # found by the sweep: no bell rang
    claimed_by, attempts = _claimed_by(shop.engine, task.task_id)
    assert claimed_by.endswith(worker.name_prefix)
    assert attempts == 2


def test_two_workers_never_build_the_same_task_twice(
    shop: Container, workers: list[Worker], tmp_path: Path
) -> None:
    for name in ("a", "b"):
        workers.append(Worker(tmp_path, name))
    for worker in workers:
        worker.wait_ready()
    restaurant = _restaurant()
    tasks = []
    for offset in range(12):
        task, _ = shop.report_tasks.request(restaurant, DAY - timedelta(days=offset))
        shop.report_bell(task.task_id)
        tasks.append(task.task_id)

    assert [_wait(shop, restaurant, t) for t in tasks] == [DONE] * 12
    claims = [_claimed_by(shop.engine, t) for t in tasks]
    assert {attempts for _, attempts in claims} == {1}
    assert all(by.endswith((workers[0].name_prefix, workers[1].name_prefix)) for by, _ in claims)


def test_a_task_that_keeps_failing_ends_failed_with_its_reason(shop: Container) -> None:
    def no_zone(_restaurant: str) -> str:
        return "Mars/Olympus_Mons"

    tasks = ReportTasks(shop.engine, utc_now, no_zone)
    restaurant = _restaurant()
    task, _ = tasks.request(restaurant, DAY)
    statuses = [tasks.run(task.task_id, "w") for _ in range(MAX_ATTEMPTS)]

    assert statuses == ["processing"] * (MAX_ATTEMPTS - 1) + [FAILED]
    failed = tasks.get(restaurant, task.task_id)
    assert failed is not None
    assert failed.status == FAILED
    assert failed.error is not None
    assert "Mars/Olympus_Mons" in failed.error
    again, created = tasks.request(restaurant, DAY)  # a failed task does not block a new one
    assert created
    assert again.task_id != task.task_id


def test_one_processing_task_per_restaurant_and_date(shop: Container) -> None:
    restaurant = _restaurant()
    first, created = shop.report_tasks.request(restaurant, DAY)
    second, created_again = shop.report_tasks.request(restaurant, DAY)
    other, _ = shop.report_tasks.request(_restaurant(), DAY)
    assert (created, created_again) == (True, False)
    assert second.task_id == first.task_id
    assert other.task_id != first.task_id


def test_two_scheduler_processes_one_acts_the_other_stands_by(
    mysql_engine: Engine, tmp_path: Path
) -> None:
    redis.Redis.from_url(REDIS_URL).delete("coffeeshop:scheduler")
    env = service_env(MYSQL_URL, REDIS_URL, LOG_LEVEL="INFO")
    processes, logs = [], []
    for name in ("s1", "s2"):
        log = tmp_path / f"{name}.log"
        logs.append(log)
        processes.append(spawn(["scheduler"], env, tmp_path, log))
        time.sleep(1.5)  # the first one takes the lock
    try:
        deadline = time.monotonic() + 30
        while b"acts" not in logs[0].read_bytes():
            assert time.monotonic() < deadline, tail(logs[0])
            time.sleep(0.1)
        time.sleep(1)
        assert b"acts" not in logs[1].read_bytes(), tail(logs[1])
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in processes]
    assert codes == [0, 0], [tail(log) for log in logs]
