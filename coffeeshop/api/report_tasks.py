"""Report tasks: requested by the API, built by workers, kept in ``report_tasks``.

The table is the truth about a task, the work stream only rings the bell. A worker owns a
task through a lease (``claimed_by``/``claimed_at``, taken with one conditional UPDATE); a
worker that dies leaves a lease that expires, and any worker's sweep takes the task again,
so a task is never stuck in ``processing``. After MAX_ATTEMPTS it is ``failed`` with the
reason. While one task of a restaurant and date is processing, asking again returns it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from redis import Redis
from sqlalchemy import (
    JSON,
    Column,
    Date,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import IntegrityError

from coffeeshop.events.clock import Clock, naive_utc
from coffeeshop.events.schema import Timestamp
from coffeeshop.queries.full_report import full_daily_report, report_csv

log = logging.getLogger("coffeeshop.reports")
metadata = MetaData()
PROCESSING, DONE, FAILED = "processing", "done", "failed"
LEASE = timedelta(seconds=60)  # a worker silent for this long is presumed dead
UNCLAIMED_GRACE = timedelta(seconds=5)  # the bell may be lost: the sweep rings it again
MAX_ATTEMPTS = 3
RETENTION = timedelta(days=30)  # finished tasks, with their reports, are kept this long
REPORTS_BUILT = Counter(
    "coffeeshop_report_tasks", "Report task attempts by outcome (done, retry, failed)", ["outcome"]
)
STREAM = "coffeeshop.report-tasks"  # the bell: {task_id}, read by the workers' group

report_tasks = Table(
    "report_tasks",
    metadata,
    Column("task_id", String(36), primary_key=True),
    Column("restaurant_id", String(36), nullable=False),
    Column("day", Date, nullable=False),
    Column("status", String(16), nullable=False),
    Column("active_key", String(64), nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("claimed_by", String(64), nullable=True),
    Column("claimed_at", Timestamp, nullable=True),
    Column("requested_at", Timestamp, nullable=False),
    Column("finished_at", Timestamp, nullable=True),
    Column("result", JSON, nullable=True),
    Column("csv", Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb"), nullable=True),
    Column("error", Text, nullable=True),
    UniqueConstraint("active_key", name="uq_report_tasks_active_key"),
    Index("ix_report_tasks_restaurant_requested", "restaurant_id", "requested_at"),
    Index("ix_report_tasks_status_claimed", "status", "claimed_at"),
)


@dataclass(frozen=True)
class ReportTask:
    task_id: str
    restaurant_id: str
    day: date
    status: str
    attempts: int
    result: dict[str, Any] | None
    error: str | None
    csv: str | None


class ReportTasks:
    def __init__(self, engine: Engine, clock: Clock, timezone_of: Callable[[str], str]) -> None:
        self._engine = engine
        self._clock = clock
        self._timezone_of = timezone_of

    # -- the API's side --------------------------------------------------------------------

    def request(self, restaurant_id: str, day: date) -> tuple[ReportTask, bool]:
        """The processing task for this restaurant and date, new (True) or already running."""
        active = f"{restaurant_id}/{day.isoformat()}"
        try:
            with self._engine.begin() as conn:
                task_id = str(uuid.uuid4())
                conn.execute(
                    insert(report_tasks).values(
                        task_id=task_id,
                        restaurant_id=restaurant_id,
                        day=day,
                        status=PROCESSING,
                        active_key=active,
                        attempts=0,
                        requested_at=self._now(),
                    )
                )
            created = True
        except IntegrityError:
            created = False
        with self._engine.connect() as conn:
            query = select(report_tasks).where(
                report_tasks.c.task_id == task_id
                if created
                else report_tasks.c.active_key == active
            )
            row = conn.execute(query).first()
        if row is None:  # it finished between our insert attempt and this read: ask again
            return self.request(restaurant_id, day)
        return _task(row), created

    def get(self, restaurant_id: str, task_id: str) -> ReportTask | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(report_tasks).where(
                    report_tasks.c.task_id == task_id,
                    report_tasks.c.restaurant_id == restaurant_id,
                )
            ).first()
        return None if row is None else _task(row)

    # -- the worker's side -----------------------------------------------------------------

    def claim(self, task_id: str, worker: str) -> ReportTask | None:
        """Take the task if nobody holds a live lease on it; None if someone does."""
        now = self._now()
        with self._engine.begin() as conn:
            taken = conn.execute(
                update(report_tasks)
                .where(
                    report_tasks.c.task_id == task_id,
                    report_tasks.c.status == PROCESSING,
                    or_(
                        report_tasks.c.claimed_at.is_(None),
                        report_tasks.c.claimed_at < now - LEASE,
                    ),
                )
                .values(claimed_by=worker, claimed_at=now, attempts=report_tasks.c.attempts + 1)
            ).rowcount
            if taken != 1:
                return None
            row = conn.execute(
                select(report_tasks).where(report_tasks.c.task_id == task_id)
            ).first()
        return None if row is None else _task(row)

    def due(self, limit: int = 20, unclaimed_after: timedelta = UNCLAIMED_GRACE) -> list[str]:
        """Tasks a sweep should take: never claimed for a while, or their lease ran out."""
        now = self._now()
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(report_tasks.c.task_id)
                .where(
                    report_tasks.c.status == PROCESSING,
                    or_(
                        report_tasks.c.claimed_at < now - LEASE,
                        (report_tasks.c.claimed_at.is_(None))
                        & (report_tasks.c.requested_at <= now - unclaimed_after),
                    ),
                )
                .order_by(report_tasks.c.requested_at)
                .limit(limit)
            ).all()
        return [row.task_id for row in rows]

    def build(self, task: ReportTask) -> tuple[dict[str, Any], str]:
        zone = self._timezone_of(task.restaurant_id)
        report = full_daily_report(self._engine, task.restaurant_id, task.day, zone)
        return report.model_dump(mode="json"), report_csv(report)

    def run(self, task_id: str, worker: str) -> str | None:
        """Claim and build one task; the status it ended in, or None if another worker has it."""
        task = self.claim(task_id, worker)
        if task is None:
            return None
        try:
            result, csv = self.build(task)
        except Exception as exc:
            log.exception("report task %s failed (attempt %d)", task_id, task.attempts)
            if task.attempts >= MAX_ATTEMPTS:
                self._finish(task_id, worker, FAILED, error=f"{type(exc).__name__}: {exc}")
                REPORTS_BUILT.labels("failed").inc()
                return FAILED
            self._release(task_id, worker)
            REPORTS_BUILT.labels("retry").inc()
            return PROCESSING
        self._finish(task_id, worker, DONE, result=result, csv=csv)
        REPORTS_BUILT.labels("done").inc()
        return DONE

    def purge(self, older_than: timedelta = RETENTION) -> int:
        """Forget finished tasks (and their reports) after ``older_than``."""
        limit = self._now() - older_than
        with self._engine.begin() as conn:
            return int(
                conn.execute(
                    delete(report_tasks).where(
                        report_tasks.c.status != PROCESSING, report_tasks.c.finished_at < limit
                    )
                ).rowcount
            )

    def _finish(self, task_id: str, worker: str, status: str, **values: Any) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(report_tasks)
                .where(
                    report_tasks.c.task_id == task_id,
                    report_tasks.c.claimed_by == worker,
                    report_tasks.c.status == PROCESSING,
                )
                .values(status=status, active_key=None, finished_at=self._now(), **values)
            )

    def _release(self, task_id: str, worker: str) -> None:
        """Let the next sweep retry at once (the lease is given back)."""
        with self._engine.begin() as conn:
            conn.execute(
                update(report_tasks)
                .where(report_tasks.c.task_id == task_id, report_tasks.c.claimed_by == worker)
                .values(claimed_at=self._now() - LEASE - timedelta(seconds=1))
            )

    def _now(self) -> datetime:
        return naive_utc(self._clock())


def _task(row: Any) -> ReportTask:
    return ReportTask(
        task_id=row.task_id,
        restaurant_id=row.restaurant_id,
        day=row.day,
        status=row.status,
        attempts=int(row.attempts),
        result=row.result,
        error=row.error,
        csv=row.csv,
    )


def redis_bell(redis_url: str) -> Callable[[str], None]:
    """How the API tells the workers about a new task (a lost bell is found by a sweep)."""
    client = Redis.from_url(redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def ring(task_id: str) -> None:
        try:
            client.xadd(STREAM, {"task_id": task_id}, maxlen=100_000, approximate=True)
        except Exception:
            log.warning("could not announce report task %s; a sweep will find it", task_id)

    return ring


def no_bell(_task_id: str) -> None:
    """Embedded mode: the in-process sweep finds new tasks within half a second."""
