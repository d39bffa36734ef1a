"""The `coffeeshop` command line: the service, migrations and operator tools."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

import uvicorn
from pydantic import ValidationError

from coffeeshop.api.container import Container, build_container
from coffeeshop.api.db import make_engine
from coffeeshop.api.demo import build_demo
from coffeeshop.api.logging import configure_logging
from coffeeshop.api.runtime import projection_report, run_projectors, run_relay
from coffeeshop.api.settings import Settings
from coffeeshop.migrations.runner import upgrade


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
    uvicorn.run(
        "coffeeshop.api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        server_header=False,
    )
    return 0


def _run_until_signalled(work: Callable[[Container, asyncio.Event], Awaitable[None]]) -> int:
    settings = _settings()
    if settings.redis_url is None:
        sys.exit("coffeeshop: this process needs REDIS_URL (embedded mode runs it inside serve)")
    configure_logging(settings)
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


def relay(_args: argparse.Namespace) -> int:
    return _run_until_signalled(run_relay)


def projector(args: argparse.Namespace) -> int:
    names: list[str] = args.names
    return _run_until_signalled(lambda c, stop: run_projectors(c, names, stop))


def projections(_args: argparse.Namespace) -> int:
    settings = _settings()
    container = build_container(settings)
    try:
        rows = projection_report(container)
    finally:
        container.close()
    print(f"{'projection':<16} {'state':<10} {'applied':>10} {'head':>10} {'lag':>8}  error")
    for row in rows:
        print(
            f"{row.name:<16} {row.state:<10} {row.applied:>10} {row.head:>10} "
            f"{row.lag_events:>8}  {row.error or ''}"
        )
    return 0


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

    projector_cmd = commands.add_parser("projector", help="run projectors from Redis Streams")
    projector_cmd.add_argument("names", nargs="*", metavar="NAME", help="default: all")
    projector_cmd.set_defaults(handler=projector)

    status_cmd = commands.add_parser("projections", help="each projection's position and lag")
    status_cmd.set_defaults(handler=projections)

    demo_cmd = commands.add_parser("demo", help="load a realistic demo restaurant")
    demo_cmd.add_argument("--orders", type=int, default=2000, help="orders over the period")
    demo_cmd.add_argument("--days", type=int, default=30, help="days of history")
    demo_cmd.set_defaults(handler=demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
