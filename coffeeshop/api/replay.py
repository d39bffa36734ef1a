"""`coffeeshop replay`, spread over parallel jobs.

Rebuilding is CPU-bound in Python (decode events, run handlers, render rows), so a replay of
several projections runs them in parallel jobs, grouped by weight so that each job gets
about the same work: the first job in this process, the others in child processes. Every job
reads the store itself and swaps its projections in as soon as they are done; they are
independent, so one failing does not undo the others. Progress is reported as one line.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from coffeeshop.api.container import build_container
from coffeeshop.api.logging import configure_logging
from coffeeshop.api.runtime import build_projectors
from coffeeshop.api.settings import Settings
from coffeeshop.projections.base import Projection
from coffeeshop.projections.rebuild import Progress, Rebuilder, ReplayResult

POLL_S = 0.2


class ReplayFailed(RuntimeError):
    """One or more jobs failed; the others' projections were rebuilt and swapped in."""

    def __init__(self, failures: list[str], results: list[ReplayResult]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures
        self.results = results


def split(projections: Sequence[Projection], jobs: int) -> list[list[str]]:
    """Projection names in at most ``jobs`` groups of similar total weight (heaviest first,
    each into the lightest group so far)."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(jobs, len(projections))))]
    loads = [0] * len(groups)
    for projection in sorted(projections, key=lambda p: -p.weight):
        lightest = loads.index(min(loads))
        groups[lightest].append(projection.name)
        loads[lightest] += projection.weight
    return [group for group in groups if group]


def replay(
    settings: Settings,
    names: Sequence[str],
    *,
    jobs: int,
    batch_size: int,
    restart: bool,
    progress: Progress,
) -> list[ReplayResult]:
    container = build_container(settings)
    try:
        projections = [p.projection for p in build_projectors(container, names)]
    finally:
        container.close()
    groups = split(projections, jobs)
    if len(groups) == 1:
        return _rebuild(settings, groups[0], batch_size, restart, progress)
    return _in_processes(settings, groups, batch_size, restart, progress)


@dataclass
class _Job:
    process: Any
    done: int = 0
    total: int = 0
    finished: bool = False


def _in_processes(
    settings: Settings,
    groups: list[list[str]],
    batch_size: int,
    restart: bool,
    progress: Progress,
) -> list[ReplayResult]:
    """The first group runs here, the others in child processes (one process fewer: less
    memory, no start-up cost for it); messages from the children are handled between our
    own batches and after them."""
    context = multiprocessing.get_context("spawn")
    messages: Any = context.Queue()
    jobs = [_Job(None)] + [
        _Job(
            context.Process(
                target=_job,
                args=(_JobSpec(settings, group, batch_size, restart, index), messages),
                name=f"replay-{'+'.join(group)}",
            )
        )
        for index, group in enumerate(groups)
        if index > 0
    ]
    for job in jobs[1:]:
        job.process.start()
    results: list[ReplayResult] = []
    failures: list[str] = []

    def handle(kind: str, index: int, payload: list[Any]) -> None:
        job = jobs[index]
        if kind == "progress":
            job.done, job.total = payload
            # Every job reads the whole store: the slowest one says how far the replay is.
            progress(min(j.done for j in jobs), max(j.total for j in jobs))
        elif kind == "done":
            results.extend(payload[0])
            job.finished = True
        else:
            failures.append(f"{'+'.join(groups[index])}: {payload[0]}")
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
            handle("done", 0, [_rebuild(settings, groups[0], batch_size, restart, own_progress)])
        except Exception as exc:
            handle("failed", 0, [str(exc)])
        while not all(job.finished for job in jobs):
            try:
                kind, index, *payload = messages.get(timeout=POLL_S)
            except queue.Empty:
                _notice_deaths(jobs, groups, failures)
                continue
            handle(kind, index, payload)
    finally:
        for job in jobs[1:]:
            job.process.join(timeout=10)
            if job.process.is_alive():
                job.process.terminate()
    if failures:
        raise ReplayFailed(failures, results)
    return results


def _rebuild(
    settings: Settings, names: list[str], batch_size: int, restart: bool, progress: Progress
) -> list[ReplayResult]:
    container = build_container(settings)
    try:
        projections = [p.projection for p in build_projectors(container, names)]
        rebuilder = Rebuilder(
            container.engine,
            container.store,
            container.clock,
            batch_size=batch_size,
            progress=progress,
        )
        return rebuilder.replay(projections, restart=restart)
    finally:
        container.close()


def _notice_deaths(jobs: list[_Job], groups: list[list[str]], failures: list[str]) -> None:
    for index, job in enumerate(jobs):
        if not job.finished and job.process is not None and not job.process.is_alive():
            job.finished = True
            failures.append(
                f"{'+'.join(groups[index])}: the job died (exit code {job.process.exitcode})"
            )


@dataclass(frozen=True)
class _JobSpec:
    settings: Settings
    names: list[str]
    batch_size: int
    restart: bool
    index: int


def _job(spec: _JobSpec, messages: Any) -> None:
    """One job, in its own process: rebuild its projections and report over ``messages``."""
    configure_logging(spec.settings)
    last = [0.0]

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= POLL_S or done >= total:
            last[0] = now
            messages.put(("progress", spec.index, done, total))

    try:
        results = _rebuild(spec.settings, spec.names, spec.batch_size, spec.restart, report)
        messages.put(("done", spec.index, results))
    except Exception as exc:
        messages.put(("failed", spec.index, str(exc)))
