"""The `coffeeshop` command line: the service, migrations and operator tools."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from coffeeshop.api.db import make_engine
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
