"""HTTP benchmark in the production topology: `coffeeshop serve` (uvicorn workers), relay and
projector as subprocesses on MariaDB + Redis, load from wrk.

Part A writes: its own database ``coffeeshop_http_bench`` (emptied and migrated every run),
Redis db 12 (flushed), restaurants with a POS key and a menu each; POST /api/v1/orders at
32 connections while relay and projector run, then how long until every projection is at
the store's head. Part B reads: the kept 1M-order tenant (bench/orders_dataset.py,
``coffeeshop_http_bench_1m``), GET /api/v1/orders at random pages, deep keyset pages and
with a status filter, and GET /api/v1/menu against /health on the same server.

    .venv/bin/python bench/http_api.py            # ~5 min once the dataset exists
    .venv/bin/python bench/http_api.py --quick    # a short smoke run (small dataset, 1 run)
    .venv/bin/python bench/http_api.py --help

Progress goes to stderr, the report to stdout. See bench/README.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orders_dataset
import raw_limits
import redis
import restaurants
from databases import bench_settings, empty_and_migrate
from procs import (
    BIN,
    Child,
    Progress,
    RssSampler,
    api_workers,
    cpu_seconds,
    flush_redis,
    free_port,
    start_child,
    stop_children,
    wait_healthy,
)
from sqlalchemy import Engine
from stats import Measured, Table

from coffeeshop.api.container import build_container
from coffeeshop.api.db import make_engine
from coffeeshop.api.demo import MENU
from coffeeshop.api.identity.principal import Principal
from coffeeshop.api.identity.roles import Role
from coffeeshop.api.identity.schemas import ApiKeyCreate
from coffeeshop.api.settings import Settings
from coffeeshop.events.registry import registry
from coffeeshop.events.store import EventStore
from coffeeshop.projections import tracking

WRITE_DB = "coffeeshop_http_bench"
QUICK_DATASET_DB = "coffeeshop_http_bench_quick"
REDIS_DB = 12
PROJECTIONS = orders_dataset.PROJECTIONS
START_TIMEOUT_S = 60.0
DRAIN_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0

progress = Progress()


# -- processes ---------------------------------------------------------------------------------


def service_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": "x" * 40,
        "RATE_LIMIT_ENABLED": "false",
        "LOG_LEVEL": "WARNING",
        "ENVIRONMENT": "development",
    }


@contextmanager
def services(
    env: dict[str, str], port: int, workers: int, read_side: bool
) -> Iterator[list[Child]]:
    """`coffeeshop serve` (and relay + projector when ``read_side``), each stopped by its own
    handle and reaped, also after an error."""
    tool = str(BIN / "coffeeshop")
    commands = {"serve": [tool, "serve", "--workers", str(workers), "--host", "127.0.0.1"]}
    commands["serve"] += ["--port", str(port)]
    if read_side:
        commands["relay"] = [tool, "relay"]
        commands["projector"] = [tool, "projector"]
    children: list[Child] = []
    with tempfile.TemporaryDirectory(prefix="coffeeshop-http-bench-") as workdir:
        try:
            for name, argv in commands.items():
                children.append(start_child(name, argv, env, Path(workdir)))
            wait_healthy(
                f"http://127.0.0.1:{port}",
                children,
                START_TIMEOUT_S,
                ready=lambda: len(api_workers(children[0].process.pid)) >= workers,
                request_timeout_s=2,
                poll_s=0.2,
                log_lines=20,
            )
            yield children
        finally:
            stop_children(children, STOP_TIMEOUT_S)


# -- databases ---------------------------------------------------------------------------------


def fresh_database(server: str, name: str) -> str:
    url = f"{server}/{name}?charset=utf8mb4"
    raw_limits.ensure_database(url)
    engine = make_engine(bench_settings(url, None))
    try:
        empty_and_migrate(engine)
    finally:
        engine.dispose()
    return url


@dataclass
class Shop:
    restaurant_id: str
    key: str
    item_ids: list[str]


def open_shops(settings: Settings, count: int) -> list[Shop]:
    """Restaurants through the command side: sign-up, a menu of 8 items, a POS key."""
    container = build_container(settings)
    shops = []
    try:
        for number in range(count):
            email = f"owner{number}-{uuid.uuid4().hex[:8]}@bench.coffeeshop.example"
            signup, ctx = restaurants.sign_up(container, f"HTTP Bench {number}", email, "bench")
            rid = signup.restaurant_id
            menu = {category: MENU[category][:4] for category in ("Coffee", "Pastries")}
            items = restaurants.add_menu(container, ctx, menu)
            owner = Principal(rid, Role.OWNER, user_id=signup.user_id)
            key = container.identity.create_api_key(owner, ApiKeyCreate(name="bench POS")).key
            shops.append(Shop(rid, key, items))
    finally:
        container.close()
    return shops


def pos_key(settings: Settings, restaurant_id: str, owner_id: str) -> str:
    container = build_container(settings)
    try:
        owner = Principal(restaurant_id, Role.OWNER, user_id=owner_id)
        return container.identity.create_api_key(owner, ApiKeyCreate(name="bench GET")).key
    finally:
        container.close()


def projection_lag(engine: Engine, restaurant_ids: Sequence[str]) -> int:
    """Events not yet applied, summed over the restaurants, for the slowest projection."""
    heads = EventStore(engine, registry).heads()
    worst = 0
    with engine.connect() as conn:
        for name in PROJECTIONS:
            checkpoints = tracking.all_checkpoints(conn, name)
            behind = sum(max(0, heads.get(r, 0) - checkpoints.get(r, 0)) for r in restaurant_ids)
            worst = max(worst, behind)
    return worst


class LagSampler:
    """The projections' lag while a load runs, once a second."""

    def __init__(self, engine: Engine, restaurant_ids: Sequence[str]) -> None:
        self.samples: list[int] = []
        self._stop = threading.Event()

        def run() -> None:
            while not self._stop.wait(1.0):
                self.samples.append(projection_lag(engine, restaurant_ids))

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def close(self) -> int:
        self._stop.set()
        self._thread.join(10)
        return max(self.samples, default=0)


def drain_seconds(engine: Engine, restaurant_ids: Sequence[str]) -> float:
    begin = time.monotonic()
    while projection_lag(engine, restaurant_ids) > 0:
        if time.monotonic() - begin > DRAIN_TIMEOUT_S:
            return float("inf")
        time.sleep(0.05)
    return time.monotonic() - begin


# -- profiling ---------------------------------------------------------------------------------


READ_PROFILES = {"B pages": "get_orders.txt", "B menu": "get_menu.txt"}


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    binary = BIN / "py-spy"
    if not binary.exists():
        progress("py-spy is not installed in the venv: no profile (make install)")
        return None
    argv = [str(binary), "record", "-d", str(int(seconds)), "-p", str(pid), "-o", str(out)]
    return subprocess.Popen(  # own child, waited for by the caller
        [*argv, "-f", "raw", "--gil"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarize_folded(path: Path, top: int = 15) -> list[str]:
    """py-spy's raw (folded) stacks: the functions with the most samples, on-CPU as the
    innermost frame (self) and anywhere on the stack (total)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [f.split(" (")[0] + _where(f) for f in stack.split(";")]
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return ["(no samples)"]
    lines = [f"{samples} samples; self (innermost frame):"]
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines.append("total (anywhere on the stack), application and library frames:")
    interesting = [(f, n) for f, n in total.most_common() if "threading.py" not in f]
    lines += [f"  {100 * n / samples:5.1f}%  {f}" for f, n in interesting[:top]]
    return lines


def _where(frame: str) -> str:
    if " (" not in frame:
        return ""
    location = frame.split(" (", 1)[1].rstrip(")")
    for marker in ("site-packages/", "wt-bench/", "lib/python3.11/"):
        if marker in location:
            location = location.split(marker, 1)[1]
    return f" ({location.rsplit(':', 1)[0]})"


# -- the two parts -----------------------------------------------------------------------------


@dataclass
class Figures:
    values: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))

    def add(self, name: str, value: float) -> None:
        self.values[name].append(value)

    def __getitem__(self, name: str) -> Measured:
        return Measured.of(self.values.get(name, []))


def wrk_into(figures: Figures, prefix: str, result: raw_limits.WrkResult) -> None:
    figures.add(f"{prefix} rps", result.requests_per_s)
    figures.add(f"{prefix} p50", result.p50_ms)
    figures.add(f"{prefix} p99", result.p99_ms)
    figures.add(f"{prefix} errors", result.non_2xx + result.socket_errors)
    if result.non_2xx or result.socket_errors:
        first = [line for line in result.output.splitlines() if "FIRST-ERROR" in line]
        progress(f"  {prefix}: {result.non_2xx} non-2xx, {result.socket_errors} socket errors")
        if first:
            progress(f"  {first[0]}")


def write_part(args: argparse.Namespace, figures: Figures, rss: RssSampler, tmp: Path) -> None:
    redis_url = f"{args.redis}/{REDIS_DB}"
    flush_redis(redis_url)
    url = fresh_database(args.mysql, WRITE_DB)
    settings = bench_settings(url, redis_url)
    progress(f"A. {args.restaurants} restaurants with a menu and a POS key in {WRITE_DB}")
    shops = open_shops(settings, args.restaurants)
    shops_file = tmp / "shops.tsv"
    shops_file.write_text("".join(f"{s.key}\t{','.join(s.item_ids)}\n" for s in shops))
    ids = [s.restaurant_id for s in shops]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    engine = make_engine(settings)
    try:
        with services(service_env(url, redis_url), port, args.workers, True) as children:
            rss.watch(children)
            workers = api_workers(children[0].process.pid)
            progress(f"A. serve ({len(workers)} workers), relay, projector up; warm-up")
            post: dict[str, Any] = {"script": "post_orders.lua", "connections": args.connections}
            warm_up = [str(shops_file), f"warm{uuid.uuid4().hex[:8]}"]
            raw_limits.run_wrk(f"{base}/api/v1/orders", seconds=2, **post, script_args=warm_up)
            drain_seconds(engine, ids)
            for run in range(args.runs):
                progress(f"A. run {run + 1}/{args.runs}: /health, then POST /orders")
                health = raw_limits.health_rate(base, args.connections, args.health_seconds)
                wrk_into(figures, "A health", health)
                lag = LagSampler(engine, ids)
                cpu_before = cpu_seconds(workers)
                spy = None
                if run == 0 and args.profile:
                    spy = py_spy(workers[0], args.seconds - 2, args.profile / "post_orders.txt")
                result = raw_limits.run_wrk(
                    f"{base}/api/v1/orders",
                    seconds=args.seconds,
                    **post,
                    script_args=[str(shops_file), f"r{run}{uuid.uuid4().hex[:8]}"],
                )
                cpu = cpu_seconds(workers) - cpu_before
                figures.add("A lag", lag.close())
                figures.add("A drain", drain_seconds(engine, ids))
                wrk_into(figures, "A post", result)
                figures.add("A post cpu/req", 1000 * cpu / max(1, result.requests))
                if spy is not None:
                    spy.wait(args.seconds + 30)
                rss.sample()
    finally:
        engine.dispose()


def collect_cursors(base: str, key: str, orders: int, starts: int, walk: int) -> list[str]:
    """Keyset cursors deep in the list: a page at ``starts`` random offsets, then ``walk``
    pages onwards from each by ``next_cursor``."""
    rng = random.Random(7)
    cursors: list[str] = []
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=120) as client:
        for _ in range(starts):
            skip = rng.randrange(0, max(1, orders - 20 * (walk + 1)))
            page = client.get("/api/v1/orders", params={"skip": skip, "limit": 20}).json()
            for _ in range(walk):
                cursor = page.get("next_cursor")
                if not cursor:
                    break
                cursors.append(cursor)
                page = client.get("/api/v1/orders", params={"cursor": cursor, "limit": 20}).json()
    return cursors


def read_part(args: argparse.Namespace, figures: Figures, rss: RssSampler, tmp: Path) -> None:
    redis_url = f"{args.redis}/{REDIS_DB}"
    spec = orders_dataset.OrdersSpec(orders=args.orders)
    begin = time.monotonic()
    info = orders_dataset.ensure_orders_dataset(
        f"{args.mysql}/{args.dataset_db}?charset=utf8mb4",
        spec,
        reseed=args.reseed,
        say=progress,
    )
    args.dataset_line = orders_dataset.describe(info, time.monotonic() - begin)
    figures.add("B seed rate", info.seed_rate)
    figures.add("B seed s", info.seed_seconds)
    figures.add("B replay s", info.replay_seconds)
    flush_redis(redis_url)
    settings = bench_settings(info.url, redis_url)
    key = pos_key(settings, info.restaurant_id, info.owner_id)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(11)
    skips = [rng.randint(0, args.skip_max) for _ in range(2000)]
    pages = tmp / "pages.txt"
    pages.write_text("".join(f"/api/v1/orders?limit=20&skip={s}\n" for s in skips))
    status = tmp / "status.txt"
    status.write_text(
        "".join(f"/api/v1/orders?limit=20&status=cancelled&skip={s}\n" for s in skips)
    )
    with services(service_env(info.url, redis_url), port, args.workers, False) as children:
        rss.watch(children)
        workers = api_workers(children[0].process.pid)
        progress("B. collecting deep keyset cursors")
        cursors = collect_cursors(base, key, args.orders, args.cursor_starts, 10)
        deep = tmp / "deep.txt"
        deep.write_text("".join(f"/api/v1/orders?limit=20&cursor={c}\n" for c in cursors))
        loads = {
            "B pages": ("/api/v1/orders", [str(pages), key]),
            "B deep": ("/api/v1/orders", [str(deep), key]),
            "B status": ("/api/v1/orders", [str(status), key]),
            "B menu": ("/api/v1/menu", ["", key]),
        }
        raw_limits.run_wrk(f"{base}/api/v1/menu", seconds=2, script_args=["", key])  # warm-up
        raw_limits.run_wrk(f"{base}/api/v1/orders", seconds=2, script_args=[str(pages), key])
        for run in range(args.runs):
            progress(f"B. run {run + 1}/{args.runs}: /health, orders pages, deep, status, menu")
            health = raw_limits.health_rate(base, args.connections, args.health_seconds)
            wrk_into(figures, "B health", health)
            for name, (path, script_args) in loads.items():
                spy = None
                if run == 0 and args.profile and name in READ_PROFILES:
                    out = args.profile / READ_PROFILES[name]
                    spy = py_spy(workers[0], args.seconds - 2, out)
                cpu_before = cpu_seconds(workers)
                result = raw_limits.run_wrk(
                    base + path,
                    seconds=args.seconds,
                    connections=args.connections,
                    script_args=script_args,
                )
                cpu = cpu_seconds(workers) - cpu_before
                figures.add(f"{name} cpu/req", 1000 * cpu / max(1, result.requests))
                wrk_into(figures, name, result)
                if spy is not None:
                    spy.wait(args.seconds + 30)
            rss.sample()


# -- the report --------------------------------------------------------------------------------


def setup_lines(args: argparse.Namespace, limits_url: str) -> list[str]:
    conn = raw_limits.connect_mysql(limits_url, database=False)  # server facts only
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT VERSION(), @@innodb_flush_log_at_trx_commit, @@log_bin, "
                "@@innodb_buffer_pool_size"
            )
            version, flush, binlog, pool = cur.fetchone()  # type: ignore[misc]
    finally:
        conn.close()
    client = redis.Redis.from_url(f"{args.redis}/{REDIS_DB}")
    try:
        redis_version = client.info("server")["redis_version"]
    finally:
        client.close()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10, check=False)
    return [
        f"MariaDB {version} (innodb_flush_log_at_trx_commit={flush}, log_bin={binlog}, "
        f"buffer pool {int(pool) // 2**20} MB); Redis {redis_version}, db {REDIS_DB}",
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the start; "
        f"{(wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else 'wrk'}",
        f"coffeeshop serve --workers {args.workers} (uvicorn, production mode: MariaDB + "
        "Redis), relay and projector subprocesses in part A; RATE_LIMIT_ENABLED=false, "
        "LOG_LEVEL=WARNING",
        f"wrk: 2 threads, {args.connections} connections, {args.seconds:g} s per load "
        f"({args.health_seconds:g} s for /health); {args.runs} run(s), figures are "
        "median (min-max)",
    ]


def build_table(args: argparse.Namespace, f: Figures, limits: raw_limits.Limits) -> Table:
    table = Table()
    raw_limits.add_rows(table, limits)
    c = args.connections
    table.section(f"A. writes: {args.restaurants} restaurants in {WRITE_DB}, relay + projector")
    table.add(f"GET /health, {c} connections (ceiling)", f["A health rps"], "req/s")
    table.add(
        f"POST /api/v1/orders, 3 lines, {c} conn",
        f["A post rps"],
        "req/s",
        limit=f["A health rps"],
        target=(">=", 1000),
    )
    table.add("  p50", f["A post p50"], "ms")
    table.add("  p99", f["A post p99"], "ms", target=("<=", 50))
    table.add("  non-2xx + socket errors", f["A post errors"], "", target=("<=", 0))
    table.add("  api CPU per request (all workers)", f["A post cpu/req"], "ms")
    table.add("  projections' lag during the load (max)", f["A lag"], "events")
    table.add("  drain after the load (all projections)", f["A drain"], "s", target=("<=", 1))
    table.section(f"B. reads: {args.orders:,}-order tenant in {args.dataset_db}")
    table.add(f"GET /health, {c} connections (ceiling)", f["B health rps"], "req/s")
    labels = {
        "B pages": f"GET /orders?limit=20, skip 0..{args.skip_max}",
        "B deep": "GET /orders?limit=20, deep keyset cursor",
        "B status": f"GET /orders?status=cancelled, skip 0..{args.skip_max}",
    }
    for key, label in labels.items():
        table.add(label, f[f"{key} rps"], "req/s", limit=f["B health rps"], target=(">=", 2000))
        table.add("  p50", f[f"{key} p50"], "ms")
        table.add("  p99", f[f"{key} p99"], "ms", target=("<=", 20))
        table.add("  api CPU per request", f[f"{key} cpu/req"], "ms")
        table.add("  non-2xx + socket errors", f[f"{key} errors"], "", target=("<=", 0))
    table.add(
        "GET /api/v1/menu (cached)",
        f["B menu rps"],
        "req/s",
        limit=f["B health rps"],
        target=(">=", 0.70),
        target_is_ratio=True,
    )
    table.add("  p99", f["B menu p99"], "ms")
    table.add("  non-2xx + socket errors", f["B menu errors"], "", target=("<=", 0))
    table.section("dataset (kept; figures from when it was seeded)")
    table.add("seeding through append_many", f["B seed rate"], "events/s", limit=limits.batch_100)
    table.add("seeding time", f["B seed s"], "s")
    table.add("replay --all into the read tables", f["B replay s"], "s")
    return table


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mysql", default="mysql+pymysql://root@127.0.0.1:3306")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument("--runs", type=int, default=3, help="runs of every load (default 3)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per load (10)")
    parser.add_argument("--health-seconds", type=float, default=5.0, help="per /health run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--restaurants", type=int, default=8, help="part A's restaurants (8)")
    parser.add_argument("--orders", type=int, default=1_000_000, help="part B's tenant size")
    parser.add_argument("--dataset-db", default=None, help="part B's kept database")
    parser.add_argument("--skip-max", type=int, default=2000, help="random skip 0..N (2000)")
    parser.add_argument("--cursor-starts", type=int, default=20, help="deep offsets walked")
    parser.add_argument("--reseed", action="store_true", help="seed part B's dataset again")
    parser.add_argument("--no-writes", dest="writes", action="store_false", help="skip part A")
    parser.add_argument("--no-reads", dest="reads", action="store_false", help="skip part B")
    parser.add_argument("--profile", type=Path, help="py-spy one api worker into this dir")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: 1 run, 3 s loads, a 20,000-order tenant in {QUICK_DATASET_DB}",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.seconds, args.health_seconds = 1, 3.0, 2.0
        args.orders, args.cursor_starts = min(args.orders, 20_000), 3
    if args.dataset_db is None:
        args.dataset_db = "coffeeshop_http_bench_1m" if not args.quick else QUICK_DATASET_DB
    if not args.dataset_db.startswith("coffeeshop_http_bench"):
        parser.error("--dataset-db must start with coffeeshop_http_bench")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    orders_dataset.stop_on_sigterm()
    if raw_limits.wrk_available() is None:
        sys.exit("wrk is not installed: apt-get install -y wrk (or `make bench` as root)")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    limits_url = f"{args.mysql}/{WRITE_DB}?charset=utf8mb4"
    header = setup_lines(args, limits_url)
    figures = Figures()
    rss = RssSampler()
    args.dataset_line = ""
    try:
        limits = raw_limits.measure(
            limits_url, f"{args.redis}/{REDIS_DB}", runs=args.runs, say=progress
        )
        with tempfile.TemporaryDirectory(prefix="coffeeshop-http-bench-") as tmp:
            if args.writes:
                write_part(args, figures, rss, Path(tmp))
            if args.reads:
                read_part(args, figures, rss, Path(tmp))
    finally:
        rss.close()
        flush_redis(f"{args.redis}/{REDIS_DB}")
    table = build_table(args, figures, limits)
    table.section("peak RSS (VmHWM, sampled every 0.5 s)")
    for role, peak in sorted(rss.peaks.items()):
        table.add(role + (" (largest)" if role == "api worker" else ""), Measured((peak,)), "MB")
    table.notes += [
        "POST load goes round the restaurants: one restaurant's appends serialise on its "
        "sequence row, so a single tenant would measure that lock, not the API.",
        "Every POST carries its own Idempotency-Key; errors must be 0.",
        "drain: from the end of the load until every projection's checkpoint is at the "
        "store's head for every restaurant; lag: the slowest projection, sampled each second.",
        "api CPU per request: utime+stime of the uvicorn workers (/proc) during the load, "
        "divided by the requests served; steadier than req/s on a shared machine.",
    ]
    print()
    print("\n".join(header))
    if args.dataset_line:
        print(args.dataset_line)
    print()
    table.print()
    if args.profile:
        for name in ("post_orders.txt", *READ_PROFILES.values()):
            path = args.profile / name
            if path.exists():
                print(f"\npy-spy, one api worker, {name}:")
                print("\n".join(summarize_folded(path)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
