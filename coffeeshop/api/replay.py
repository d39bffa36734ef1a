"""`coffeeshop replay`, spread over parallel jobs.

Rebuilding is CPU-bound in Python (decode events, run handlers, format rows), so a replay
splits the *restaurants* into as many partitions as jobs. Every job reads only its
restaurants' events, once, and feeds every chosen projection with them, writing into the
shared shadow tables: no event is read or decoded twice, and the jobs never share a row
(every read-model row belongs to one restaurant). The first job runs in this process, the
others in child processes. When all are done, this process brings the shadows to the store
heads, swaps them in and lets the live projections catch up. Progress is one line.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from coffeeshop.api.container import build_container
from coffeeshop.api.db import make_engine
from coffeeshop.api.logging import configure_logging
from coffeeshop.api.runtime import build_projectors
from coffeeshop.api.settings import Settings
from coffeeshop.events.partition import WHOLE, Partition
from coffeeshop.projections.base import Projection
from coffeeshop.projections.rebuild import Progress, Rebuilder, ReplayResult

POLL_S = 0.2


class ReplayFailed(RuntimeError):
    """One or more jobs failed: nothing was swapped in, and the next run resumes."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures


def replay(
    settings: Settings,
    names: Sequence[str],
    *,
    jobs: int,
    batch_size: int,
    restart: bool,
    progress: Progress,
) -> list[ReplayResult]:
    started = time.monotonic()
    parts = Partition.all(max(1, jobs))
    with _bulk_rebuilder(settings, names, batch_size, progress) as (rebuilder, projections):
        resumed = rebuilder.begin(projections, restart=restart, parts=parts)
        if len(parts) == 1:
            rebuilder.fill_part(projections, WHOLE)
        else:
            _in_processes(
                settings,
                names,
                parts,
                batch_size=batch_size,
                progress=progress,
                run_first=lambda part, report: rebuilder.fill_part(projections, part, report),
            )
        return rebuilder.complete(projections, resumed, started)


@contextmanager
def _bulk_rebuilder(
    settings: Settings, names: Sequence[str], batch_size: int, progress: Progress
) -> Iterator[tuple[Rebuilder, list[Projection]]]:
    """A Rebuilder on an engine of its own that may bulk-load (LOAD DATA LOCAL INFILE)."""
    container = build_container(settings)
    engine = make_engine(settings, bulk_load=True)
    try:
        projections = [p.projection for p in build_projectors(container, names)]
        yield (
            Rebuilder(
                engine,
                container.store,
                container.clock,
                batch_size=batch_size,
                progress=progress,
                cache=container.cache,
            ),
            projections,
        )
    finally:
        engine.dispose()
        container.close()


@dataclass
class _Job:
    process: Any
    done: int = 0
    total: int = 0
    finished: bool = False


def _in_processes(
    settings: Settings,
    names: Sequence[str],
    parts: list[Partition],
    *,
    batch_size: int,
    progress: Progress,
    run_first: Callable[[Partition, Progress], None],
) -> None:
    """The first part runs here (``run_first``), the others in child processes; messages
    from the children are handled between our own batches and after them."""
    context = multiprocessing.get_context("spawn")
    messages: Any = context.Queue()
    jobs = [_Job(None)] + [
        _Job(
            context.Process(
                target=_job,
                args=(_JobSpec(settings, list(names), batch_size, part, index), messages),
                name=f"replay-part-{part.index + 1}-of-{part.count}",
            )
        )
        for index, part in enumerate(parts)
        if index > 0
    ]
    for job in jobs[1:]:
        job.process.start()
    failures: list[str] = []

    def handle(kind: str, index: int, payload: list[Any]) -> None:
        job = jobs[index]
        if kind == "progress":
            job.done, job.total = payload
            progress(sum(j.done for j in jobs), sum(j.total for j in jobs))
        elif kind == "done":
            job.finished = True
        else:
            failures.append(f"part {parts[index]}: {payload[0]}")
            job.finished = True

    def drain() -> None:
        while True:
            try:
                kind, index, *payload = messages.get_nowait()
            except queue.Empty:
                return
            handle(kind, index, payload)

    def own_progress(done: int, total: int) -> None:
        handle("progress", 0, [done, total])
        drain()

    try:
        try:
            run_first(parts[0], own_progress)
            handle("done", 0, [])
        except Exception as exc:
            handle("failed", 0, [str(exc)])
        while not all(job.finished for job in jobs):
            try:
                kind, index, *payload = messages.get(timeout=POLL_S)
            except queue.Empty:
                _notice_deaths(jobs, parts, failures)
                continue
            handle(kind, index, payload)
    finally:
        for job in jobs[1:]:
            job.process.join(timeout=10)
            if job.process.is_alive():
                job.process.terminate()
    if failures:
        raise ReplayFailed(failures)


def _notice_deaths(jobs: list[_Job], parts: list[Partition], failures: list[str]) -> None:
    for index, job in enumerate(jobs):
        if not job.finished and job.process is not None and not job.process.is_alive():
            job.finished = True
            failures.append(f"part {parts[index]}: the job died (exit code {job.process.exitcode})")


@dataclass(frozen=True)
class _JobSpec:
    settings: Settings
    names: list[str]
    batch_size: int
    part: Partition
    index: int


def _job(spec: _JobSpec, messages: Any) -> None:
    """One part, in its own process: its keyset pass, reported over ``messages``."""
    configure_logging(spec.settings)
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= POLL_S or done >= total:
            last[0] = now
            messages.put(("progress", spec.index, done, total))

    try:
        with _bulk_rebuilder(spec.settings, spec.names, spec.batch_size, report) as (
            rebuilder,
            projections,
        ):
            rebuilder.fill_part(projections, spec.part)
        messages.put(("done", spec.index))
    except Exception as exc:
        messages.put(("failed", spec.index, str(exc)))
