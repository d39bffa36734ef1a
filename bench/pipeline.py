"""Command -> visible lag at a steady rate, relay throughput and projector drain.

The production topology, as separate processes: `coffeeshop serve --workers W`,
`coffeeshop relay` and `coffeeshop projector` (one process, or several splitting the
projections with ``--projectors``), on MariaDB + Redis Streams. Its own database
(``coffeeshop_pipeline_bench``: created, emptied, migrated, dropped at the end) and Redis
db 14 (flushed at start and end). Rate limiting is off. Every figure is the median
(min-max) of ``--runs`` runs, beside limits measured in the same run.

1. Lag: POST /api/v1/orders (3 lines, X-API-Key, Idempotency-Key) issued on a fixed
   schedule at ``--rate`` commands/s from an async httpx client; as soon as each POST
   answers, GET /api/v1/orders/{id}?min_position=<its position>, which the API answers when
   the ``orders`` projection has applied that position (it checks every 5 ms). Lag = GET
   answered - POST answered. A GET answered stale counts as a miss.
2. Relay: the read side stopped, ``--backlog`` events appended through the store, then
   `coffeeshop relay` started alone: events / time from its first publish to an empty
   outbox.
3. Projector drain: then the projector process(es) start: events / time from their first
   applied event until every projection's checkpoints reach the store's heads (start-up
   catch-up from the store, then the bus; the periodic catch-up interval is the default).
4. Peak RSS (VmHWM) of every process.

    .venv/bin/python bench/pipeline.py                 # ~6 minutes on 2 CPUs
    .venv/bin/python bench/pipeline.py --quick         # ~1 minute smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import raw_limits
from databases import bench_settings
from procs import (
    BIN,
    Child,
    Progress,
    children_of,
    cpu_seconds,
    flush_redis,
    free_port,
    peak_rss_mb,
    start_child,
    stop_children,
    tail,
    wait_healthy,
)
from read_side import Shop, append_backlog, drop_database, open_shop, prepare_database
from sqlalchemy import func, select
from stats import Measured, Table, percentile

from coffeeshop.api.container import Container, build_container
from coffeeshop.api.identity.principal import Principal
from coffeeshop.api.identity.roles import Role
from coffeeshop.api.identity.schemas import ApiKeyCreate
from coffeeshop.api.settings import Settings
from coffeeshop.events.schema import outbox
from coffeeshop.projections import tracking

DB_NAME = "coffeeshop_pipeline_bench"
REDIS_DB = 14
PROJECTIONS = ("orders", "order_history", "menu", "daily_sales")
CONNECTIONS_PER_TILL = 16
STEP_TIMEOUT_S = 300.0
progress = Progress(width=7)


# -- the world ---------------------------------------------------------------------------------


@dataclass
class Till:
    """A restaurant with a menu and a POS key, as a till sees it."""

    shop: Shop
    key: str

    def order_body(self, rng: random.Random) -> dict[str, Any]:
        items = rng.sample(self.shop.items, 3)
        return {"items": [{"menu_item_id": item.menu_item_id, "quantity": 1} for item in items]}


def open_tills(container: Container, count: int) -> list[Till]:
    def one(number: int) -> Till:
        shop = open_shop(container, "pipeline", number)
        owner = Principal(restaurant_id=shop.restaurant_id, role=Role.OWNER, user_id=shop.user_id)
        key = container.identity.create_api_key(owner, ApiKeyCreate(name="till")).key
        return Till(shop, key)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(count)))


class Services:
    """The API, relay and projector processes, started and stopped by name."""

    def __init__(self, settings: Settings, args: argparse.Namespace, workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._workdir = workdir
        self._groups: list[list[str]] = [g.split(",") if g else [] for g in args.projectors]
        self._workers = args.workers
        self.env = dict(os.environ)
        self.env.update(
            DATABASE_URL=settings.database_url,
            REDIS_URL=settings.redis_url or "",
            SECRET_KEY="x" * 40,
            RATE_LIMIT_ENABLED="false",
            LOG_LEVEL="WARNING",
            ENVIRONMENT="development",
        )
        self.children: dict[str, Child] = {}
        self.peak_rss: dict[str, float] = {}

    def start_api(self) -> None:
        argv = [str(BIN / "coffeeshop"), "serve", "--port", str(self.port)]
        self._start("api", [*argv, "--workers", str(self._workers)])
        wait_healthy(self.base, list(self.children.values()))

    def start_relay(self) -> None:
        self._start("relay", [str(BIN / "coffeeshop"), "relay"])

    def start_projectors(self) -> None:
        for number, names in enumerate(self._groups):
            self._start(f"projector{number}", [str(BIN / "coffeeshop"), "projector", *names])

    def stop(self, *names: str) -> None:
        chosen = [c for n, c in self.children.items() if not names or n.startswith(names)]
        for child in chosen:
            self._note_rss(child)
        stop_children(chosen)
        self.children = {n: c for n, c in self.children.items() if c not in chosen}

    def pids(self, prefix: str) -> list[int]:
        """The processes of a service (an API's workers are children of its pid)."""
        found = []
        for name, child in self.children.items():
            if name.startswith(prefix):
                found += [child.process.pid, *children_of(child.process.pid)]
        return found

    def check(self) -> None:
        for child in self.children.values():
            if child.process.poll() is not None:
                raise RuntimeError(f"{child.name} exited:\n{tail(child.log_path)}")

    def _start(self, name: str, argv: list[str]) -> None:
        self.children[name] = start_child(name, argv, self.env, self._workdir)

    def _note_rss(self, child: Child) -> None:
        for pid in [child.process.pid, *children_of(child.process.pid)]:
            rss = peak_rss_mb(pid)
            key = child.name if pid == child.process.pid else f"{child.name} worker"
            if not math.isnan(rss):
                self.peak_rss[key] = max(rss, self.peak_rss.get(key, 0.0))


# -- 1. lag ------------------------------------------------------------------------------------


@dataclass
class LagRun:
    post_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)  # how far behind schedule a POST left
    stale: int = 0
    errors: list[str] = field(default_factory=list)
    api_cpu: float = math.nan  # cores used by the API workers during the run
    read_side_cpu: float = math.nan
    client_cpu: float = math.nan  # cores used by this process, the load generator


async def _lag_run(services: Services, tills: list[Till], rate: float, seconds: float) -> LagRun:
    run = LagRun()
    total = int(rate * seconds)
    rng = random.Random(7)
    # One small client per till, as a till has: httpcore scans every connection of a pool
    # for each request, and one client with 256 connections used more than a core at 200
    # commands/s, so the load generator, not the service, set the latency.
    limits = httpx.Limits(max_connections=CONNECTIONS_PER_TILL)
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            till.key: await stack.enter_async_context(
                httpx.AsyncClient(base_url=services.base, limits=limits, timeout=10)
            )
            for till in tills
        }

        async def one(till: Till, due: float) -> None:
            client = clients[till.key]
            run.late_ms.append((time.perf_counter() - due) * 1000)
            headers = {"X-API-Key": till.key, "Idempotency-Key": uuid.uuid4().hex}
            begin = time.perf_counter()
            try:
                posted = await client.post(
                    "/api/v1/orders", json=till.order_body(rng), headers=headers
                )
                accepted = time.perf_counter()
                if posted.status_code != 201:
                    run.errors.append(f"POST {posted.status_code}")
                    return
                body = posted.json()
                seen = await client.get(
                    f"/api/v1/orders/{body['id']}",
                    params={"min_position": body["position"]},
                    headers={"X-API-Key": till.key},
                )
                visible = time.perf_counter()
            except httpx.HTTPError as exc:
                run.errors.append(repr(exc))
                return
            if seen.status_code != 200:
                run.errors.append(f"GET {seen.status_code}")
            elif seen.headers.get("X-Projection-Stale") == "true":
                run.stale += 1
            else:
                run.post_ms.append((accepted - begin) * 1000)
                run.lag_ms.append((visible - accepted) * 1000)

        tasks = []
        api_pids = services.pids("api")
        side_pids = services.pids("relay") + services.pids("projector")
        cpu_api, cpu_side = cpu_seconds(api_pids), cpu_seconds(side_pids)
        cpu_client = time.process_time()
        begin = time.perf_counter()
        for number in range(total):
            due = begin + number / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(tills[number % len(tills)], due)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=STEP_TIMEOUT_S)
        elapsed = time.perf_counter() - begin
        run.api_cpu = (cpu_seconds(api_pids) - cpu_api) / elapsed
        run.read_side_cpu = (cpu_seconds(side_pids) - cpu_side) / elapsed
        run.client_cpu = (time.process_time() - cpu_client) / elapsed
    return run


def lag_runs(services: Services, tills: list[Till], args: argparse.Namespace) -> list[LagRun]:
    asyncio.run(_lag_run(services, tills, args.rate, 2.0))  # warm the connections and caches
    runs = []
    for number in range(args.runs):
        progress(f"lag run {number + 1}/{args.runs}: {args.rate:g} commands/s for {args.seconds}s")
        run = asyncio.run(_lag_run(services, tills, args.rate, args.seconds))
        progress(
            f"  lag p50 {percentile(run.lag_ms, 50):.1f} ms, p99 {percentile(run.lag_ms, 99):.1f}"
            f" ms, {run.stale} stale, {len(run.errors)} errors"
        )
        runs.append(run)
    return runs


# -- 2./3. relay and projector drain ------------------------------------------------------------


@dataclass
class DrainRun:
    events: int
    relay_rate: float
    drain_rate: float
    relay_cpu_us: float  # CPU per event
    projector_cpu_us: float


def _outbox_size(container: Container) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())


def _applied(container: Container, heads: dict[str, int]) -> dict[str, int]:
    """Per projection: events applied so far, over these restaurants."""
    done = {}
    with container.engine.connect() as conn:
        for name in PROJECTIONS:
            positions = tracking.all_checkpoints(conn, tracking.checkpoint_table(name))
            done[name] = sum(min(positions.get(r, 0), head) for r, head in heads.items())
    return done


def _wait(what: str, condition: Callable[[], bool], services: Services) -> float:
    """Poll ``condition`` every 20 ms; returns when it held (perf_counter)."""
    deadline = time.perf_counter() + STEP_TIMEOUT_S
    while not condition():
        services.check()
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{what} did not happen within {STEP_TIMEOUT_S:.0f} s")
        time.sleep(0.02)
    return time.perf_counter()


def drain_run(
    container: Container, services: Services, tills: list[Till], args: argparse.Namespace, seed: int
) -> DrainRun:
    services.stop("relay", "projector")
    shops = [till.shop for till in tills]
    before = container.store.heads()
    progress(f"drain: appending ~{args.backlog:,} events (relay and projectors stopped)")
    began = time.perf_counter()
    append_backlog(container, shops, args.backlog // 5, seed=seed)
    heads = {s.restaurant_id: container.store.heads()[s.restaurant_id] for s in shops}
    events = sum(head - before.get(r, 0) for r, head in heads.items())
    progress(f"  {events:,} events in {time.perf_counter() - began:.0f}s; starting the relay")
    queued = _outbox_size(container)
    services.start_relay()
    first = _wait("the relay's first publish", lambda: _outbox_size(container) < queued, services)
    cpu0 = cpu_seconds(services.pids("relay"))
    moved = queued - _outbox_size(container)
    empty = _wait("an empty outbox", lambda: _outbox_size(container) == 0, services)
    relay_rate = (queued - moved) / (empty - first) if empty > first else math.nan
    relay_cpu = (cpu_seconds(services.pids("relay")) - cpu0) / max(1, queued - moved) * 1e6
    start = _applied(container, heads)
    target = {name: sum(heads.values()) for name in PROJECTIONS}
    progress(f"  relay: {relay_rate:,.0f} events/s; starting the projector(s)")
    services.start_projectors()
    first = _wait("the first applied event", lambda: _applied(container, heads) != start, services)
    cpu0 = cpu_seconds(services.pids("projector"))
    base = _applied(container, heads)
    done = _wait("every projection at head", lambda: _applied(container, heads) == target, services)
    remaining = max(target[name] - base[name] for name in PROJECTIONS)
    drain_rate = remaining / (done - first) if done > first else math.nan
    projector_cpu = (cpu_seconds(services.pids("projector")) - cpu0) / max(1, remaining) * 1e6
    progress(f"  projector drain: {drain_rate:,.0f} events/s")
    return DrainRun(events, relay_rate, drain_rate, relay_cpu, projector_cpu)


# -- the report --------------------------------------------------------------------------------


def report(
    table: Table, lags: list[LagRun], drains: list[DrainRun], args: argparse.Namespace
) -> None:
    def over(values: Sequence[float]) -> Measured:
        return Measured.of(values)

    table.section(f"1. command -> visible, {args.rate:g} commands/s for {args.seconds}s")
    table.add("POST /orders p50", over([percentile(r.post_ms, 50) for r in lags]), "ms")
    table.add("POST /orders p99", over([percentile(r.post_ms, 99) for r in lags]), "ms")
    table.add(
        "accepted -> visible in GET /orders/{id}, p50",
        over([percentile(r.lag_ms, 50) for r in lags]),
        "ms",
        target=("<=", 20),
    )
    table.add(
        "accepted -> visible in GET /orders/{id}, p99",
        over([percentile(r.lag_ms, 99) for r in lags]),
        "ms",
        target=("<=", 100),
    )
    table.add(
        "POST left behind schedule, p99", over([percentile(r.late_ms, 99) for r in lags]), "ms"
    )
    table.add("GETs answered stale", over([r.stale for r in lags]), "count", target=("<=", 0))
    table.add(
        "errors (non-2xx, transport)",
        over([len(r.errors) for r in lags]),
        "count",
        target=("<=", 0),
    )
    table.add("CPU of the API workers", over([r.api_cpu for r in lags]), "cores")
    table.add("CPU of relay + projector(s)", over([r.read_side_cpu for r in lags]), "cores")
    # Near 1 core the load generator (one Python process) is the bottleneck: it then runs
    # behind schedule and the latencies above are its queueing, not the service's.
    table.add("CPU of the load generator (httpx)", over([r.client_cpu for r in lags]), "cores")
    if drains:
        table.section(f"2./3. relay and projector drain, ~{args.backlog:,}-event backlog")
        table.add("relay outbox -> Redis Streams", over([d.relay_rate for d in drains]), "events/s")
        table.add("  relay CPU per event", over([d.relay_cpu_us for d in drains]), "µs")
        table.add(
            "projector drain, all 4 projections",
            over([d.drain_rate for d in drains]),
            "events/s",
            target=(">=", 20_000),
        )
        table.add("  projector CPU per event", over([d.projector_cpu_us for d in drains]), "µs")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0, help="commands/s in part 1")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each lag run")
    parser.add_argument("--backlog", type=int, default=200_000, help="events per drain run")
    parser.add_argument("--restaurants", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="API worker processes")
    parser.add_argument(
        "--projectors",
        nargs="+",
        default=["orders,order_history", "menu,daily_sales"],
        help="one projector process per argument, each a comma-separated list of "
        "projections ('' = all four in one process)",
    )
    parser.add_argument("--limit-seconds", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true", help="1 run, 5 s lag, 20k backlog")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds, args.backlog = 1, 5.0, 20_000
        args.limit_seconds = 1.0
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = bench_settings(f"{args.mysql}/{DB_NAME}?charset=utf8mb4", f"{args.redis}/{REDIS_DB}")
    assert settings.redis_url is not None
    progress(f"preparing database {DB_NAME} and Redis db {REDIS_DB}")
    flush_redis(settings.redis_url)
    prepare_database(settings, args.mysql).dispose()
    container = build_container(settings)
    table = Table()
    workdir = Path(tempfile.mkdtemp(prefix="coffeeshop-pipeline-"))
    services = Services(settings, args, workdir)
    try:
        tills = open_tills(container, args.restaurants)
        services.start_api()
        services.start_relay()
        services.start_projectors()
        progress(f"limits (API on {services.base})")
        limits = raw_limits.measure(
            settings.database_url,
            settings.redis_url,
            runs=args.runs,
            seconds=args.limit_seconds,
            base_url=services.base,
            say=progress,
        )
        raw_limits.add_rows(table, limits)
        lags = lag_runs(services, tills, args)
        drains = [drain_run(container, services, tills, args, seed) for seed in range(args.runs)]
        report(table, lags, drains, args)
        services.stop()
        table.section("4. peak RSS (VmHWM)")
        for name, rss in sorted(services.peak_rss.items()):
            table.add(name, Measured.of([rss]), "MB", target=("<=", 500))
    finally:
        services.stop()
        container.close()
        progress(f"dropping database {DB_NAME}, flushing Redis db {REDIS_DB}")
        drop_database(settings, args.mysql)
        flush_redis(settings.redis_url)
    print("coffeeshop pipeline bench (bench/pipeline.py)")
    print(
        f"  Python {platform.python_version()}, {os.cpu_count()} CPUs; {args.workers} API "
        f"workers; projector processes: {' | '.join(g or 'all' for g in args.projectors)}; "
        f"{args.restaurants} restaurants; rate limiting off (RATE_LIMIT_ENABLED=false)"
    )
    table.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
