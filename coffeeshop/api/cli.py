"""The `coffeeshop` command line: the service, migrations and operator tools."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import start_http_server
from pydantic import ValidationError

from coffeeshop.api.container import Container, build_container
from coffeeshop.api.db import make_engine
from coffeeshop.api.demo import build_demo
from coffeeshop.api.logging import configure_logging
from coffeeshop.api.observability import init_sentry
from coffeeshop.api.progress import ProgressLine
from coffeeshop.api.replay import ReplayFailed
from coffeeshop.api.replay import replay as parallel_replay
from coffeeshop.api.report import render_report
from coffeeshop.api.runtime import build_projectors, projection_report, run_projectors, run_relay
from coffeeshop.api.scheduler import run_scheduler
from coffeeshop.api.settings import Settings
from coffeeshop.api.worker import run_worker
from coffeeshop.migrations.runner import upgrade
from coffeeshop.projections import shadow
from coffeeshop.projections.base import Projection
from coffeeshop.projections.projector import ProjectionFailed, Projector
from coffeeshop.projections.rebuild import DEFAULT_BATCH, Rebuilder
from coffeeshop.projections.verify import Verifier

PARALLEL_FROM_EVENTS = 200_000
APP_FACTORY = "coffeeshop.api.app:create_app"
SHUTDOWN_GRACE_S = 30  # in-flight requests get this long after SIGTERM


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        ]
        sys.exit("coffeeshop: invalid configuration\n" + "\n".join(lines))


def migrate(_args: argparse.Namespace) -> int:
    settings = _settings()
    engine = make_engine(settings)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    print(f"database is at the latest schema ({engine.url.render_as_string()})")
    return 0


def serve(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings.uses_sqlite:
        if args.workers > 1:
            sys.exit(
                "coffeeshop: the embedded SQLite mode runs one worker; set DATABASE_URL "
                "and REDIS_URL to run several"
            )
        migrate(args)
    options: dict[str, Any] = {
        "factory": True,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "log_config": None,
        "access_log": False,  # AccessLogMiddleware logs every request, as JSON
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or None,
        "server_header": False,
        "timeout_graceful_shutdown": SHUTDOWN_GRACE_S,
    }
    if args.workers > 1:  # uvicorn's supervisor stops the workers and returns
        _metrics_shared_by_workers()
        uvicorn.run(APP_FACTORY, **options)
    else:
        _StoppableServer(uvicorn.Config(APP_FACTORY, **options)).run()
    return 0


def _metrics_shared_by_workers() -> None:
    """Several workers: prometheus_client writes each one's counters to files in a shared
    directory and /metrics sums them. It must be set before a worker imports the client,
    and start empty (stale files would add a previous run's counts)."""
    configured = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    else:
        directory = Path(tempfile.mkdtemp(prefix="coffeeshop-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


class _StoppableServer(uvicorn.Server):
    """SIGTERM or SIGINT: stop accepting, finish the requests in flight (at most
    SHUTDOWN_GRACE_S), run the app's shutdown (the embedded projectors finish their batch),
    then exit 0. Uvicorn itself re-raises the signal afterwards, so a process manager saw a
    clean stop as death by signal (exit -15)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {signum: signal.signal(signum, self.handle_exit) for signum in handled}
        try:
            yield
        finally:
            for signum, handler in original.items():
                signal.signal(signum, handler)


def _run_until_signalled(
    process: str, work: Callable[[Container, asyncio.Event], Awaitable[None]]
) -> int:
    settings = _settings()
    if settings.redis_url is None:
        sys.exit("coffeeshop: this process needs REDIS_URL (embedded mode runs it inside serve)")
    configure_logging(settings)
    init_sentry(settings, process)
    if settings.metrics_port is not None:  # relay, projector, worker, scheduler: /metrics
        start_http_server(settings.metrics_port)
    container = build_container(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            await work(container, stop)
        finally:
            await container.aclose()

    asyncio.run(main())
    return 0


def scheduler(_args: argparse.Namespace) -> int:
    return _run_until_signalled("scheduler", run_scheduler)


def worker(_args: argparse.Namespace) -> int:
    return _run_until_signalled("worker", run_worker)


def relay(_args: argparse.Namespace) -> int:
    return _run_until_signalled("relay", run_relay)


def projector(args: argparse.Namespace) -> int:
    names: list[str] = args.names
    return _run_until_signalled("projector", lambda c, stop: run_projectors(c, names, stop))


def projections(_args: argparse.Namespace) -> int:
    settings = _settings()
    container = build_container(settings)
    try:
        rows = projection_report(container)
    finally:
        container.close()
    print(render_report(rows, container.clock()))
    return 0


def replay(args: argparse.Namespace) -> int:
    """Rebuild projections from the event store: into shadow tables swapped in at the end,
    or, with --restaurant, one tenant's rows in place."""
    if not args.names and not args.all:
        sys.exit("coffeeshop replay: name the projections to rebuild, or pass --all")
    settings = _settings()
    configure_logging(settings)
    container = build_container(settings)
    chosen = [p.projection for p in _chosen(container, args.names)]
    jobs = args.jobs or _default_jobs(settings, container)
    progress = ProgressLine("replay", quiet=args.quiet)
    started = time.monotonic()
    try:
        with shadow.exclusive(container.engine, "rebuild"):
            if args.restaurant:
                return _replay_restaurant(args, container, chosen)
            results = parallel_replay(
                settings,
                [projection.name for projection in chosen],
                jobs=jobs,
                batch_size=args.batch_size,
                restart=args.restart,
                progress=progress,
            )
    except shadow.Busy as exc:
        sys.exit(f"coffeeshop replay: {exc}")
    except (ProjectionFailed, ReplayFailed) as exc:
        progress.close()
        print(f"coffeeshop replay failed: {exc}", file=sys.stderr)
        print(
            "nothing was swapped in and live tables were not touched; fix the cause and "
            "run replay again (it resumes from the last committed batch)",
            file=sys.stderr,
        )
        return 1
    finally:
        progress.close()
        container.close()
    elapsed = time.monotonic() - started
    for result in results:
        resumed = f", resumed after {result.resumed_from:,}" if result.resumed_from else ""
        _say(
            args,
            f"{result.projection}: rebuilt from {result.events:,} events{resumed}; "
            "swapped in and caught up",
        )
    events = max((r.events for r in results), default=0)
    rate = events / elapsed if elapsed > 0 else 0.0
    _say(
        args,
        f"replayed {events:,} events in {elapsed:.1f} s ({rate:,.0f} events/s, {jobs} job(s))",
    )
    return 0


def _default_jobs(settings: Settings, container: Container) -> int:
    """One process per CPU for a big store on MySQL; one otherwise (starting a job costs a
    few seconds, and SQLite has a single writer anyway)."""
    if settings.uses_sqlite or sum(container.store.heads().values()) < PARALLEL_FROM_EVENTS:
        return 1
    return os.cpu_count() or 1


def _replay_restaurant(
    args: argparse.Namespace, container: Container, chosen: Sequence[Projection]
) -> int:
    if container.store.head(args.restaurant) == 0:
        sys.exit(f"coffeeshop replay: restaurant {args.restaurant} has no events in the store")
    rebuilder = Rebuilder(
        container.engine,
        container.store,
        container.clock,
        batch_size=args.batch_size,
        cache=container.cache,
    )
    for projection in chosen:
        count = rebuilder.replay_restaurant(projection, args.restaurant)
        _say(
            args,
            f"{projection.name}: restaurant {args.restaurant} rebuilt in place "
            f"from {count:,} events",
        )
    return 0


def verify(args: argparse.Namespace) -> int:
    """Compare live projections with a fresh rebuild; exit 1 on any difference."""
    settings = _settings()
    configure_logging(settings)
    container = build_container(settings)
    chosen = [p.projection for p in _chosen(container, args.names)]
    progress = ProgressLine("verify", quiet=args.quiet)
    verifier = Verifier(
        container.engine,
        container.store,
        container.clock,
        batch_size=args.batch_size,
        progress=progress,
    )
    try:
        with shadow.exclusive(container.engine, "verify"):
            results = verifier.verify(chosen)
    except shadow.Busy as exc:
        sys.exit(f"coffeeshop verify: {exc}")
    finally:
        progress.close()
        container.close()
    for result in results:
        print(result.summary())
    drifting = [result.projection for result in results if not result.clean]
    if drifting:
        print(
            f"drift in {', '.join(drifting)}: rebuild with `coffeeshop replay "
            f"{' '.join(drifting)}` (README: Operating the read side)",
            file=sys.stderr,
        )
        return 1
    return 0


def _chosen(container: Container, names: Sequence[str]) -> list[Projector]:
    try:
        return build_projectors(container, names)
    except ValueError as exc:
        known = ", ".join(projector.name for projector in build_projectors(container))
        sys.exit(f"coffeeshop: {exc} (known: {known})")


def _say(args: argparse.Namespace, line: str) -> None:
    if not args.quiet:
        print(line)


def demo(args: argparse.Namespace) -> int:
    settings = _settings()
    if settings.uses_sqlite:
        migrate(args)
    summary = build_demo(settings, orders=args.orders, days=args.days)
    print(
        f"demo restaurant {summary.restaurant_id}: {summary.orders} orders, "
        f"{summary.events} events\n"
        f"  owner login: {summary.owner_email} / {summary.password}\n"
        f"  POS key:     {summary.pos_key}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coffeeshop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve_cmd = commands.add_parser("serve", help="run the HTTP API")
    serve_cmd.add_argument("--host", default="127.0.0.1")
    serve_cmd.add_argument("--port", type=int, default=8000)
    serve_cmd.add_argument("--workers", type=int, default=1)
    serve_cmd.set_defaults(handler=serve)

    migrate_cmd = commands.add_parser("migrate", help="upgrade the database to the latest schema")
    migrate_cmd.set_defaults(handler=migrate)

    relay_cmd = commands.add_parser("relay", help="publish the outbox to Redis Streams")
    relay_cmd.set_defaults(handler=relay)

    worker_cmd = commands.add_parser("worker", help="build report tasks (several may run)")
    worker_cmd.set_defaults(handler=worker)

    scheduler_cmd = commands.add_parser(
        "scheduler", help="scheduled jobs: close-of-day reports, lag check, verify, outbox sweep"
    )
    scheduler_cmd.set_defaults(handler=scheduler)

    projector_cmd = commands.add_parser("projector", help="run projectors from Redis Streams")
    projector_cmd.add_argument("names", nargs="*", metavar="NAME", help="default: all")
    projector_cmd.set_defaults(handler=projector)

    status_cmd = commands.add_parser("projections", help="each projection's position and lag")
    status_cmd.set_defaults(handler=projections)

    replay_cmd = commands.add_parser(
        "replay", help="rebuild projections from the event store, without downtime"
    )
    replay_cmd.add_argument("names", nargs="*", metavar="NAME", help="projections to rebuild")
    replay_cmd.add_argument("--all", action="store_true", help="every projection")
    replay_cmd.add_argument(
        "--restaurant", metavar="ID", help="rebuild only this restaurant's rows, in place"
    )
    replay_cmd.add_argument("--batch-size", type=_positive, default=DEFAULT_BATCH, metavar="N")
    replay_cmd.add_argument(
        "--jobs",
        type=_positive,
        metavar="N",
        help="parallel processes (default: one per CPU on MySQL for 200k+ events, else one)",
    )
    replay_cmd.add_argument(
        "--restart", action="store_true", help="discard an interrupted replay instead of resuming"
    )
    replay_cmd.add_argument("--quiet", action="store_true", help="no progress, no summary")
    replay_cmd.set_defaults(handler=replay)

    verify_cmd = commands.add_parser(
        "verify", help="compare live projections with a fresh rebuild; exit 1 on drift"
    )
    verify_cmd.add_argument("names", nargs="*", metavar="NAME", help="default: all")
    verify_cmd.add_argument("--batch-size", type=_positive, default=DEFAULT_BATCH, metavar="N")
    verify_cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    verify_cmd.set_defaults(handler=verify)

    demo_cmd = commands.add_parser("demo", help="load a realistic demo restaurant")
    demo_cmd.add_argument("--orders", type=int, default=2000, help="orders over the period")
    demo_cmd.add_argument("--days", type=int, default=30, help="days of history")
    demo_cmd.set_defaults(handler=demo)
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
