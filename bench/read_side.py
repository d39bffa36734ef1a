"""Read-side benchmark: projector throughput, relay + bus drain, command -> query latency.

Production topology (MariaDB + Redis Streams). Everything runs against a database of its own
(``coffeeshop_bench``, created, emptied, migrated and dropped again) and Redis db 13 (flushed
at start and end); the ``test`` database is never touched. Every figure is printed beside a
ratio against a limit measured in the same run on the same machine, because absolute numbers
drift +-40% from run to run.

    .venv/bin/python bench/read_side.py            # defaults: ~2 minutes
    .venv/bin/python bench/read_side.py --help

Progress goes to stderr, the report to stdout. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import logging
import math
import multiprocessing
import os
import platform
import queue
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import databases
import httpx
import redis
import restaurants
from order_life import OrderLife
from procs import (
    BIN,
    Child,
    Progress,
    flush_redis,
    free_port,
    peak_rss_mb,
    process_cpu_seconds,
    start_child,
    stop_children,
    tail,
    wait_healthy,
)
from raw_limits import connect_mysql
from sqlalchemy import Engine, func, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.engine import make_url
from stats import number, percentile, print_report, ratio

from coffeeshop.api.container import Container, build_container
from coffeeshop.api.db import make_engine
from coffeeshop.api.demo import CUSTOMERS, MENU
from coffeeshop.api.identity.principal import Principal
from coffeeshop.api.identity.roles import Role
from coffeeshop.api.identity.schemas import ApiKeyCreate
from coffeeshop.api.runtime import (
    BUS_BATCH,
    build_projectors,
    run_projectors,
    run_relay,
)
from coffeeshop.api.settings import Settings
from coffeeshop.commands import menu_item, order
from coffeeshop.commands.handling import CommandContext
from coffeeshop.commands.models import (
    OrderCreate,
    OrderItemCreate,
)
from coffeeshop.events.envelope import EventMetadata, StreamRef, StreamWrite
from coffeeshop.events.orders import ORDER_STREAM
from coffeeshop.events.registry import DomainEvent
from coffeeshop.events.relay import Relay
from coffeeshop.events.schema import outbox
from coffeeshop.projections import tracking
from coffeeshop.projections.projector import Projector
from coffeeshop.queries import consistency
from coffeeshop.queries.orders import get_order

DB_NAME = "coffeeshop_bench"
REDIS_DB = 13
PROJECTIONS = ("orders", "order_history", "menu", "daily_sales")
SCRATCH_TABLE = "bench_scratch"
SCRATCH_STREAM = "bench.scratch"
ORDERS_PER_APPEND = 10  # the backlog loader's orders per transaction (5 events each)
VISIBLE_POLL_S = 0.001
VISIBLE_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 120.0
IDLE_SAMPLE_S = 2.0

progress = Progress()


# -- the report --------------------------------------------------------------------------------


@dataclass
class Report:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    header: list[str] = field(default_factory=list)

    def section(self, title: str) -> None:
        self.rows.append((f"-- {title}", "", "", ""))

    def add(self, figure: str, value: float | str, unit: str, versus: str = "") -> None:
        shown = value if isinstance(value, str) else number(value)
        self.rows.append((figure, shown, unit, versus))

    def print(self) -> None:
        width = max(len(row[0]) for row in self.rows if not row[0].startswith("-- ")) + 2
        table = [f"{'figure':<{width}}{'value':>12}  {'unit':<8} vs limit (same run)"]
        table.append("-" * (width + 12 + 2 + 8 + 1 + 44))
        for figure, value, unit, versus in self.rows:
            if figure.startswith("-- "):
                table.append(figure)
            else:
                table.append(f"{figure:<{width}}{value:>12}  {unit:<8} {versus}")
        print_report(self.header, table, self.notes)


# -- setup -------------------------------------------------------------------------------------


def make_bench_settings(args: argparse.Namespace) -> Settings:
    database_url = f"{args.mysql}/{DB_NAME}?charset=utf8mb4"
    redis_url = f"{args.redis}/{REDIS_DB}"
    return databases.bench_settings(database_url, redis_url, bus_partitions=args.partitions)


def prepare_database(settings: Settings, server_url: str) -> Engine:
    """Create the settings' database (coffeeshop_bench), drop whatever tables it has,
    migrate it."""
    name = str(make_url(settings.database_url).database)
    databases.create_database(settings, f"{server_url}/?charset=utf8mb4", name)
    engine = make_engine(settings)
    databases.empty_and_migrate(engine)
    return engine


def drop_database(settings: Settings, server_url: str) -> None:
    name = str(make_url(settings.database_url).database)
    databases.drop_database(settings, f"{server_url}/?charset=utf8mb4", name)


def quiet_logging() -> None:
    """Warnings and errors only: FastStream's brokers log every message batch at INFO."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.disable(logging.INFO)


# -- 1. limits ---------------------------------------------------------------------------------


def mysql_commit_rate(settings: Settings, seconds: float, rows_per_commit: int) -> float:
    """Rows/s inserted by one connection committing every ``rows_per_commit`` rows."""
    conn = connect_mysql(settings.database_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
            cur.execute(
                f"CREATE TABLE {SCRATCH_TABLE} (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                "restaurant_id CHAR(36) NOT NULL, payload VARCHAR(255) NOT NULL) ENGINE=InnoDB"
            )
            conn.commit()
            sql = f"INSERT INTO {SCRATCH_TABLE} (restaurant_id, payload) VALUES (%s, %s)"
            rid, payload = str(uuid.uuid4()), "x" * 200
            rows = 0
            begin = time.perf_counter()
            deadline = begin + seconds
            while time.perf_counter() < deadline:
                if rows_per_commit == 1:
                    cur.execute(sql, (rid, payload))
                else:
                    cur.executemany(sql, [(rid, payload)] * rows_per_commit)
                conn.commit()
                rows += rows_per_commit
            elapsed = time.perf_counter() - begin
            cur.execute(f"DROP TABLE {SCRATCH_TABLE}")
            conn.commit()
        return rows / elapsed
    finally:
        conn.close()


def _sample_message() -> dict[str, str]:
    """About the size of a relayed OrderPlaced envelope."""
    body = {
        "id": 123456,
        "event_id": str(uuid.uuid4()),
        "restaurant_id": str(uuid.uuid4()),
        "seq": 4242,
        "stream_type": "order",
        "stream_id": str(uuid.uuid4()),
        "version": 1,
        "type": "OrderPlaced",
        "schema_version": 1,
        "data": {
            "order_id": str(uuid.uuid4()),
            "lines": [
                {
                    "line_id": str(uuid.uuid4()),
                    "menu_item_id": str(uuid.uuid4()),
                    "name": "Flat white",
                    "unit_price_cents": 400,
                    "quantity": 2,
                    "notes": "",
                }
                for _ in range(2)
            ],
            "placed_at": datetime.now(UTC).isoformat(),
        },
        "metadata": {"actor": "user:x", "request_id": "r"},
        "recorded_at": datetime.now(UTC).isoformat(),
    }
    return {"__data__": json.dumps(body)}


def xadd_rate(redis_url: str, seconds: float, pipeline_size: int) -> float:
    """XADDs/s on one connection, one round trip each (size 1) or pipelined."""
    client = redis.Redis.from_url(redis_url)
    message = _sample_message()
    try:
        client.delete(SCRATCH_STREAM)
        sent = 0
        begin = time.perf_counter()
        deadline = begin + seconds
        while time.perf_counter() < deadline:
            if pipeline_size == 1:
                client.xadd(SCRATCH_STREAM, message, maxlen=100_000, approximate=True)  # type: ignore[arg-type]
            else:
                pipe = client.pipeline(transaction=False)
                for _ in range(pipeline_size):
                    pipe.xadd(SCRATCH_STREAM, message, maxlen=100_000, approximate=True)  # type: ignore[arg-type]
                pipe.execute()
            sent += pipeline_size
        elapsed = time.perf_counter() - begin
        client.delete(SCRATCH_STREAM)
        return sent / elapsed
    finally:
        client.close()


@dataclass
class Limits:
    commit: float  # single-row INSERT+COMMIT /s
    commit_batched: float  # rows/s at 100 rows per commit
    xadd: float  # single XADD /s
    xadd_pipelined: float  # XADD/s in pipelines of 100

    @property
    def floor_ms(self) -> float:
        """The least a command -> visible path could take: one commit plus one XADD."""
        return 1000 / self.commit + 1000 / self.xadd


def measure_limits(settings: Settings, seconds: float, reps: int, report: Report) -> Limits:
    assert settings.redis_url is not None
    samples: dict[str, list[float]] = {k: [] for k in ("commit", "batched", "xadd", "pipe")}
    for rep in range(reps):
        progress(f"limits, repetition {rep + 1}/{reps}")
        # The batched limits reach a steady rate sooner: half the time is enough.
        samples["commit"].append(mysql_commit_rate(settings, seconds, 1))
        samples["batched"].append(mysql_commit_rate(settings, seconds / 2, 100))
        samples["xadd"].append(xadd_rate(settings.redis_url, seconds, 1))
        samples["pipe"].append(xadd_rate(settings.redis_url, seconds / 2, 100))
    med = {k: statistics.median(v) for k, v in samples.items()}

    def spread(key: str) -> str:
        values = samples[key]
        return f"limit (median of {len(values)}: {number(min(values))}..{number(max(values))})"

    report.section("1. limits (raw clients, one connection)")
    report.add("MariaDB INSERT+COMMIT, 1 row/commit", med["commit"], "rows/s", spread("commit"))
    report.add(
        "MariaDB INSERT+COMMIT, 100 rows/commit", med["batched"], "rows/s", spread("batched")
    )
    report.add("Redis XADD, single", med["xadd"], "msg/s", spread("xadd"))
    report.add("Redis XADD, pipelined by 100", med["pipe"], "msg/s", spread("pipe"))
    limits = Limits(med["commit"], med["batched"], med["xadd"], med["pipe"])
    report.add(
        "floor: 1 commit + 1 XADD round trip", limits.floor_ms, "ms", "latency limit used below"
    )
    return limits


# -- the world: restaurants, menus, backlogs ---------------------------------------------------


@dataclass
class Shop:
    restaurant_id: str
    user_id: str
    ctx: CommandContext
    items: list[menu_item.MenuItem]


def open_shop(container: Container, tag: str, number: int) -> Shop:
    """Sign a restaurant up and give it a menu, through the command side."""
    email = f"owner+{tag}{number}-{uuid.uuid4().hex[:8]}@bench.coffeeshop.example"
    signup, ctx = restaurants.sign_up(container, f"Bench {tag} {number}", email, "bench")
    menu = {category: MENU[category][:5] for category in ("Coffee", "Pastries")}
    item_ids = restaurants.add_menu(container, ctx, menu)
    items = restaurants.load_items(container, ctx, item_ids)
    return Shop(signup.restaurant_id, signup.user_id, ctx, items)


def open_shops(container: Container, tag: str, count: int) -> list[Shop]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda n: open_shop(container, tag, n), range(count)))


def order_lifecycle(shop: Shop, rng: random.Random, now: datetime) -> tuple[str, list[DomainEvent]]:
    """One order's events, decided by the Order aggregate exactly as the commands would:
    placed, started, ready, served, paid (1 in 20 is cancelled after starting instead)."""
    order_id = str(uuid.uuid4())
    lines = tuple(
        order.LineRequest(str(uuid.uuid4()), item, rng.choice((1, 1, 1, 2, 3)))
        for item in rng.sample(shop.items, rng.randint(1, 3))
    )
    life = OrderLife(now - timedelta(minutes=rng.randint(60, 7 * 24 * 60)))
    step = life.step
    customer = rng.choice(CUSTOMERS) if rng.random() < 0.5 else None
    step(order.PlaceOrder(order_id, lines, None, customer), 0)
    step(order.StartPreparation(), rng.randint(1, 4))
    if rng.random() < 0.05:
        step(order.Cancel("customer left"), 1)
        return order_id, life.events
    step(order.MarkReady(), rng.randint(1, 6))
    step(order.Serve(), rng.randint(1, 3))
    tip = rng.choice((0, 0, 0, 50, 100))
    step(order.Pay(rng.choice(("card", "card", "cash")), life.state.total_cents, tip), 20)
    return order_id, life.events


def append_backlog(container: Container, shops: list[Shop], orders_total: int, seed: int) -> int:
    """Append ``orders_total`` orders' lifecycles straight to the store (10 orders per
    append_many transaction, one thread per few restaurants); returns events appended."""
    per_shop = max(1, orders_total // len(shops))
    now = datetime.now(UTC)

    def fill(index: int) -> int:
        shop = shops[index]
        rng = random.Random(seed * 1000 + index)
        appended = 0
        for start in range(0, per_shop, ORDERS_PER_APPEND):
            writes = []
            for _ in range(min(ORDERS_PER_APPEND, per_shop - start)):
                order_id, events = order_lifecycle(shop, rng, now)
                ref = StreamRef(shop.restaurant_id, ORDER_STREAM, order_id)
                writes.append(StreamWrite(ref, 0, tuple(events)))
                appended += len(events)
            metadata = EventMetadata(actor=shop.ctx.actor, request_id=f"bench-{uuid.uuid4().hex}")
            container.store.append_many(writes, metadata)
        return appended

    with ThreadPoolExecutor(max_workers=4) as pool:
        return sum(pool.map(fill, range(len(shops))))


def heads_of(container: Container, shops: Sequence[Shop]) -> dict[str, int]:
    heads = container.store.heads()
    return {shop.restaurant_id: heads.get(shop.restaurant_id, 0) for shop in shops}


# -- the read side, in a thread of its own -----------------------------------------------------


class ReadSide:
    """run_projectors (and, once asked, run_relay) on an event loop in a background thread,
    with a container (engine, pool) of their own, like a separate process would have."""

    def __init__(self, settings: Settings, catch_up_interval_s: float) -> None:
        self.container = build_container(settings)
        self._interval = catch_up_interval_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="read-side", daemon=True)
        self._tasks: list[asyncio.Task[None]] = []
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.errors: list[BaseException] = []

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._tasks.append(
            asyncio.create_task(
                run_projectors(self.container, (), self._stop, catch_up_interval_s=self._interval)
            )
        )
        self._ready.set()
        await self._stop.wait()
        for result in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(result, BaseException):
                self.errors.append(result)
        await self.container.aclose()

    def start_relay(self) -> None:
        async def begin() -> None:
            assert self._stop is not None
            self._tasks.append(asyncio.create_task(run_relay(self.container, self._stop)))

        asyncio.run_coroutine_threadsafe(begin(), self._loop).result(10)

    def failed(self) -> bool:
        return any(task.done() for task in self._tasks)

    def stop(self) -> None:
        begin = time.perf_counter()
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        progress(f"in-process read side stopped in {time.perf_counter() - begin:.1f}s")
        for error in self.errors:
            progress(f"read side ended with {error!r}")


def reset_states(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(tracking.projection_states.delete())


def wait_live(engine: Engine, is_broken: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Until every projection has marked itself live (after reset_states) and caught up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            states = tracking.states(conn)
        if all(states.get(name, ("", None))[0] == "live" for name in PROJECTIONS):
            time.sleep(1.0)  # start-up catch-up, then the broker subscribes
            return
        if is_broken():
            raise RuntimeError("the read side stopped while starting")
        time.sleep(0.05)
    raise RuntimeError(f"projections not live after {timeout_s:.0f}s")


# -- 2. projector throughput -------------------------------------------------------------------


def catch_up_each(container: Container, report: Report, limits: Limits, events: int) -> None:
    report.section(f"2a. Projector.catch_up() from the store, one at a time ({events:,} events)")
    statements = [0]

    def count(*_args: Any) -> None:
        statements[0] += 1

    sa_event.listen(container.engine, "before_cursor_execute", count)
    try:
        for name in PROJECTIONS:
            projector = build_projectors(container, [name])[0]
            statements[0] = 0
            begin = time.perf_counter()
            applied = projector.catch_up()
            elapsed = time.perf_counter() - begin
            rate = applied / elapsed
            per_event = statements[0] / applied if applied else math.nan
            progress(f"catch-up {name}: {applied} events in {elapsed:.2f}s")
            report.add(
                f"catch-up {name}",
                rate,
                "events/s",
                f"{ratio(rate, limits.commit, 'commit/s')}; "
                f"{ratio(rate, limits.commit_batched, 'rows/s@100')}; "
                f"{per_event:.1f} SQL statements/event",
            )
    finally:
        sa_event.remove(container.engine, "before_cursor_execute", count)


def bus_drain(
    settings: Settings,
    container: Container,
    shops: list[Shop],
    args: argparse.Namespace,
    report: Report,
    limits: Limits,
) -> None:
    """Projectors live on the bus, a fresh backlog in the outbox, then the relay starts."""
    reset_states(container.engine)
    side = ReadSide(settings, catch_up_interval_s=3600.0)  # the bus only, no periodic heal
    side.start()
    try:
        wait_live(container.engine, side.failed)
        progress("bus path: projectors live; appending backlog B (relay stopped)")
        begin = time.perf_counter()
        append_backlog(container, shops, args.orders, seed=2)
        progress(f"backlog B appended in {time.perf_counter() - begin:.1f}s")
        heads = heads_of(container, shops)
        total = sum(heads.values())
        with container.engine.connect() as conn:
            queued = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
        progress(f"bus path: {total} events, {queued} in the outbox; starting the relay")
        begin = time.perf_counter()
        side.start_relay()
        relay_done: float | None = None
        done: dict[str, float] = {}
        while time.perf_counter() - begin < DRAIN_TIMEOUT_S:
            now = time.perf_counter() - begin
            with container.engine.connect() as conn:
                if relay_done is None:
                    left = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
                    if left == 0:
                        relay_done = now
                for name in PROJECTIONS:
                    if name in done:
                        continue
                    positions = tracking.all_checkpoints(conn, name)
                    if all(positions.get(rid, 0) >= head for rid, head in heads.items()):
                        done[name] = now
            if relay_done is not None and len(done) == len(PROJECTIONS):
                break
            if side.failed():
                raise RuntimeError("the read side stopped during the drain")
            time.sleep(0.02)
    finally:
        side.stop()
    drained = max(done.values()) if len(done) == len(PROJECTIONS) else math.nan
    title = f"2b. bus path: relay -> Redis Streams -> 4 projectors, one process ({total:,} events)"
    report.section(title)
    relay_rate = total / relay_done if relay_done else math.nan
    report.add(
        "relay outbox -> XADD",
        relay_rate,
        "events/s",
        ratio(relay_rate, limits.xadd_pipelined, "XADD pipelined/s"),
    )
    for name in PROJECTIONS:
        rate = total / done[name] if name in done else math.nan
        report.add(
            f"drain {name} (from relay start)",
            rate,
            "events/s",
            ratio(rate, limits.commit, "commit/s"),
        )
    e2e = total / drained
    report.add(
        "end-to-end drain, all 4 projections",
        e2e,
        "events/s",
        f"{ratio(e2e, limits.commit, 'commit/s')}; "
        f"{ratio(e2e, limits.xadd_pipelined, 'XADD pipelined/s')}",
    )
    report.add("  time to drain", drained, "s", "")


# -- 3. command -> query latency ---------------------------------------------------------------


@dataclass
class Watched:
    late_s: float  # scheduled start -> command started (waiting for a free command thread)
    command_s: float  # the command itself
    visible_s: float | None = None  # command returned -> get_order found it; None: timed out


def _watch_orders(settings: Settings, inbox: Any, results: Any) -> None:
    """The watcher process: get_order on every order not yet visible, then sleep 1 ms.

    Times are time.perf_counter() (CLOCK_MONOTONIC: the same clock in every process)."""
    engine = make_engine(settings)
    pending: dict[str, tuple[str, float]] = {}
    done: dict[str, float | None] = {}
    polls = 0
    flushing = False
    while True:
        try:
            message = inbox.get() if not pending and not flushing else inbox.get_nowait()
        except queue.Empty:
            message = None
        if message is not None:
            if message[0] == "watch":
                _, order_id, restaurant_id, returned = message
                pending[order_id] = (restaurant_id, returned)
            elif message[0] == "flush":
                flushing = True
            else:
                engine.dispose()
                return
            continue  # take every queued message before the next pass
        if flushing and not pending:
            results.put((done, polls))
            done, polls, flushing = {}, 0, False
            continue
        for order_id, (restaurant_id, returned) in list(pending.items()):
            polls += 1
            if get_order(engine, restaurant_id, order_id) is not None:
                done[order_id] = time.perf_counter() - returned
                del pending[order_id]
            elif time.perf_counter() - returned > VISIBLE_TIMEOUT_S:
                done[order_id] = None
                del pending[order_id]
        time.sleep(VISIBLE_POLL_S)


class Watcher:
    """Watches orders from a process of its own (started once for part 3).

    A get_order costs ~0.5 ms of CPU, so pollers sharing the command threads' process (and
    GIL) would slow the commands and their own polling as soon as a few orders are pending."""

    def __init__(self, settings: Settings) -> None:
        context = multiprocessing.get_context("spawn")
        self._inbox = context.Queue()
        self._results = context.Queue()
        self._process = context.Process(
            target=_watch_orders,
            args=(settings, self._inbox, self._results),
            name="bench-watcher",
            daemon=True,
        )
        self._process.start()
        self.pid = self._process.pid
        self._watched: dict[str, Watched] = {}

    def watch(self, watched: Watched, restaurant_id: str, order_id: str, returned: float) -> None:
        self._watched[order_id] = watched
        self._inbox.put(("watch", order_id, restaurant_id, returned))

    def collect(self) -> int:
        """Wait until every watched order is visible or timed out; returns get_order calls."""
        self._inbox.put(("flush",))
        done, polls = self._results.get(timeout=VISIBLE_TIMEOUT_S + 30)
        for order_id, visible in done.items():
            self._watched[order_id].visible_s = visible
        self._watched = {}
        return int(polls)

    def close(self) -> None:
        self._inbox.put(("stop",))
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(5)


def place(container: Container, shop: Shop, seed: int, due: float, watcher: Watcher) -> Watched:
    """Place an order (as POST /orders would) and hand it to the watcher."""
    rng = random.Random(seed)
    body = OrderCreate(
        items=[
            OrderItemCreate(menu_item_id=uuid.UUID(item.menu_item_id), quantity=rng.randint(1, 2))
            for item in rng.sample(shop.items, rng.randint(1, 3))
        ]
    )
    begin = time.perf_counter()
    order_id = container.orders.place(shop.ctx, body).body["id"]
    returned = time.perf_counter()
    watched = Watched(begin - due, returned - begin)
    watcher.watch(watched, shop.restaurant_id, order_id, returned)
    return watched


@dataclass
class Load:
    watched: list[Watched]
    issued_s: float  # time to start every command
    wall_s: float  # until the last order was visible
    polls: int
    cpu_cores: dict[str, float]  # CPU time / wall time over the load, per process
    caught_up_s: float = math.nan  # last order visible -> every projection at its head


def steady_load(
    container: Container,
    shops: list[Shop],
    count: int,
    rate: float,
    watcher: Watcher,
    children: Sequence[Child] = (),
) -> Load:
    """``count`` place-order commands at ``rate``/s from 16 threads, each watched until
    visible; then wait until every projection is at its head."""
    for n in range(10):  # warm-up: pools, consumer groups, caches
        place(container, shops[n % len(shops)], -1 - n, time.perf_counter(), watcher)
    watcher.collect()
    pids: dict[str, int | None] = {"bench process": None, "watcher": watcher.pid}
    pids.update({c.name: c.process.pid for c in children})
    with ThreadPoolExecutor(max_workers=16) as pool:
        cpu = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
        begin = time.perf_counter()
        futures = []
        for n in range(count):
            due = begin + n / rate
            if due > time.perf_counter():
                time.sleep(due - time.perf_counter())
            shop = shops[n % len(shops)]
            futures.append(pool.submit(place, container, shop, n, due, watcher))
        issued = time.perf_counter() - begin
        watched = [future.result() for future in futures]
    polls = watcher.collect()
    wall = time.perf_counter() - begin
    cores = {name: (process_cpu_seconds(pid) - cpu[name]) / wall for name, pid in pids.items()}
    load = Load(watched, issued, wall, polls, cores)
    load.caught_up_s = wait_drained(container, shops)
    progress(f"load done in {wall:.1f}s; every projection at head {load.caught_up_s:.1f}s later")
    return load


def wait_drained(container: Container, shops: Sequence[Shop], timeout_s: float = 30.0) -> float:
    """Seconds until every projection has applied every event of ``shops`` (NaN: timeout)."""
    begin = time.perf_counter()
    while time.perf_counter() - begin < timeout_s:
        heads = heads_of(container, shops)
        with container.engine.connect() as conn:
            behind = [
                name
                for name in PROJECTIONS
                if any(tracking.all_checkpoints(conn, name).get(r, 0) < h for r, h in heads.items())
            ]
        if not behind:
            return time.perf_counter() - begin
        time.sleep(0.05)
    progress(f"projections still behind after {timeout_s:.0f}s")
    return math.nan


def report_load(report: Report, title: str, load: Load, limits: Limits) -> None:
    late = [w.late_s * 1000 for w in load.watched]
    commands = [w.command_s * 1000 for w in load.watched]
    visible = [w.visible_s * 1000 for w in load.watched if w.visible_s is not None]
    lost = sum(1 for w in load.watched if w.visible_s is None)
    report.section(
        f"{title}: {len(load.watched)} place-order commands issued at "
        f"{len(load.watched) / load.issued_s:.0f}/s, visibility polled with get_order"
    )
    one_commit = 1000 / limits.commit
    for p in (50, 99):
        value = percentile(commands, p)
        report.add(f"place-order command p{p}", value, "ms", ratio(value, one_commit, "one commit"))
    value = percentile(late, 99)
    report.add(
        "command start behind schedule p99", value, "ms", ratio(value, one_commit, "one commit")
    )
    for p in (50, 95, 99):
        value = percentile(visible, p)
        report.add(f"returned -> visible p{p}", value, "ms", ratio(value, limits.floor_ms, "floor"))
    value = max(visible) if visible else math.nan
    report.add("returned -> visible max", value, "ms", ratio(value, limits.floor_ms, "floor"))
    if lost:
        report.add("not visible within 10 s", float(lost), "orders", "")
    report.add(
        "  then all 4 projections at head after",
        load.caught_up_s,
        "s",
        "(orders is the one polled)",
    )
    polls = load.polls / load.wall_s
    report.add(
        "  get_order polls (observer load)",
        polls,
        "polls/s",
        ratio(polls, limits.commit, "commit/s"),
    )
    for name, cores in load.cpu_cores.items():
        report.add(f"  CPU during the load: {name}", cores, "cores", f"of {os.cpu_count()} CPUs")


def in_process_latency(
    settings: Settings,
    container: Container,
    shops: list[Shop],
    args: argparse.Namespace,
    report: Report,
    limits: Limits,
    watcher: Watcher,
) -> None:
    reset_states(container.engine)
    side = ReadSide(settings, catch_up_interval_s=settings.catch_up_seconds)
    side.start()
    try:
        side.start_relay()
        wait_live(container.engine, side.failed)
        progress(f"latency, read side in this process: {args.latency_orders} at {args.rate:g}/s")
        load = steady_load(container, shops, args.latency_orders, args.rate, watcher)
    finally:
        side.stop()
    report_load(report, "3a. command -> visible, read side in this process", load, limits)


# -- 3b. through HTTP, every process separate --------------------------------------------------


def start_services(settings: Settings, workdir: Path, port: int) -> list[Child]:
    """`coffeeshop serve`, `relay` and `projector`, configured by environment only."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url or "",
        SECRET_KEY="x" * 40,
        RATE_LIMIT_ENABLED="false",
        LOG_LEVEL="WARNING",
        BUS_PARTITIONS=str(settings.bus_partitions),
        ENVIRONMENT="development",
    )
    tool = str(BIN / "coffeeshop")
    return [
        start_child("serve", [tool, "serve", "--port", str(port)], env, workdir),
        start_child("relay", [tool, "relay"], env, workdir),
        start_child("projector", [tool, "projector"], env, workdir),
    ]


@dataclass
class RoundTrips:
    posts: list[float] = field(default_factory=list)
    gets: list[float] = field(default_factory=list)
    totals: list[float] = field(default_factory=list)
    stale: int = 0


def http_round_trips(base: str, key: str, shop: Shop, count: int, rate: float) -> RoundTrips:
    """POST /orders then GET /orders/{id}?min_position=, one order at a time (keep-alive)."""
    trips = RoundTrips()
    rng = random.Random(3)
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=10) as client:
        for n in range(count + 5):  # the first 5 warm up
            body = {
                "items": [
                    {"menu_item_id": item.menu_item_id, "quantity": 1}
                    for item in rng.sample(shop.items, rng.randint(1, 3))
                ]
            }
            begin = time.perf_counter()
            placed = client.post("/api/v1/orders", json=body)
            posted = time.perf_counter()
            if placed.status_code != 201:
                raise RuntimeError(f"POST /orders: {placed.status_code} {placed.text}")
            accepted = placed.json()
            seen = client.get(
                f"/api/v1/orders/{accepted['id']}", params={"min_position": accepted["position"]}
            )
            done = time.perf_counter()
            if seen.status_code != 200:
                raise RuntimeError(f"GET /orders/id: {seen.status_code} {seen.text}")
            if n >= 5:
                trips.stale += seen.headers.get("X-Projection-Stale") == "true"
                trips.posts.append((posted - begin) * 1000)
                trips.gets.append((done - posted) * 1000)
                trips.totals.append((done - begin) * 1000)
            pause = begin + 1 / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
    return trips


def report_round_trips(report: Report, trips: RoundTrips, limits: Limits) -> None:
    report.section(
        f"3c. command -> visible over HTTP: {len(trips.totals)} orders one at a time, "
        "POST /api/v1/orders then GET /api/v1/orders/{id}?min_position="
    )
    value = percentile(trips.posts, 50)
    report.add(
        "POST /api/v1/orders p50", value, "ms", ratio(value, 1000 / limits.commit, "one commit")
    )
    value = percentile(trips.gets, 50)
    report.add("GET ?min_position p50", value, "ms", ratio(value, limits.floor_ms, "floor"))
    for p in (50, 95, 99):
        value = percentile(trips.totals, p)
        report.add(f"POST+GET round trip p{p}", value, "ms", ratio(value, limits.floor_ms, "floor"))
    value = max(trips.totals) if trips.totals else math.nan
    report.add("POST+GET round trip max", value, "ms", ratio(value, limits.floor_ms, "floor"))
    report.add(
        "GETs answered stale (X-Projection-Stale)", str(trips.stale), f"of {len(trips.totals)}"
    )


def separate_processes(
    settings: Settings,
    container: Container,
    shops: list[Shop],
    args: argparse.Namespace,
    report: Report,
    limits: Limits,
    watcher: Watcher,
) -> dict[str, float]:
    """The production topology: the read side (and the API) as subprocesses. 3b drives the
    same load as 3a from here; 3c goes through HTTP. Returns each child's peak RSS."""
    shop = shops[0]
    owner = Principal(shop.restaurant_id, Role.OWNER, user_id=shop.user_id)
    key = container.identity.create_api_key(owner, ApiKeyCreate(name="bench POS")).key
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    reset_states(container.engine)
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="coffeeshop-bench-") as tmp:
        # cwd without a .env: only the variables set in start_services configure the children
        children = start_services(settings, Path(tmp), port)
        try:
            wait_healthy(base, children)
            wait_live(container.engine, lambda: any(c.process.poll() is not None for c in children))
            idle = {c.name: process_cpu_seconds(c.process.pid) for c in children}
            time.sleep(IDLE_SAMPLE_S)
            idle = {
                c.name: (process_cpu_seconds(c.process.pid) - idle[c.name]) / IDLE_SAMPLE_S
                for c in children
            }
            title = "3b. command -> visible, read side in `coffeeshop relay`/`projector`"
            for count, rate in ((args.latency_orders, args.rate), (args.low_orders, args.low_rate)):
                if count <= 0:
                    continue
                progress(f"latency, read side in subprocesses: {count} at {rate:g}/s")
                load = steady_load(container, shops, count, rate, watcher, children)
                report_load(report, title, load, limits)
                title = "3b'. the same at a lower rate"
            report.section(
                f"3b''. idle CPU of the subprocesses ({IDLE_SAMPLE_S:g} s before the loads)"
            )
            for name, cores in idle.items():
                report.add(f"coffeeshop {name}, idle", cores, "cores", f"of {os.cpu_count()} CPUs")
            if args.http_orders > 0:
                progress(f"http: {args.http_orders} POST+GET round trips on port {port}")
                trips = http_round_trips(base, key, shop, args.http_orders, args.rate)
                report_round_trips(report, trips, limits)
            for child in children:
                rss[child.name] = peak_rss_mb(child.process.pid)
        except Exception:
            for child in children:
                progress(f"{child.name} log:\n{tail(child.log_path)}")
            raise
        finally:
            stop_children(children)
    return rss


# -- main --------------------------------------------------------------------------------------


def server_facts(engine: Engine, redis_url: str) -> tuple[str, str]:
    with engine.connect() as conn:
        version = conn.execute(text("SELECT VERSION()")).scalar_one()
        flush = conn.execute(text("SELECT @@innodb_flush_log_at_trx_commit")).scalar_one()
        binlog = conn.execute(text("SELECT @@log_bin")).scalar_one()
        pool = conn.execute(text("SELECT @@innodb_buffer_pool_size")).scalar_one()
    client = redis.Redis.from_url(redis_url)
    try:
        info = client.info("server")
        persistence = client.info("persistence")
    finally:
        client.close()
    mariadb = (
        f"MariaDB {version} (innodb_flush_log_at_trx_commit={flush}, log_bin={binlog}, "
        f"buffer pool {int(pool) // 2**20} MB)"
    )
    aof = persistence.get("aof_enabled")
    redis_line = f"Redis {info['redis_version']} (aof_enabled={aof}), db {REDIS_DB}"
    return mariadb, redis_line


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mysql",
        default="mysql+pymysql://root@127.0.0.1:3306",
        help="server URL without database (the bench uses " + DB_NAME + ")",
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379",
        help=f"server URL without db (the bench uses db {REDIS_DB})",
    )
    parser.add_argument(
        "--orders",
        type=int,
        default=1600,
        help="orders per backlog, ~4.9 events each (default 1600: ~8k events per backlog; "
        "4000 gives ~20k but the run then takes ~4 minutes on 2 CPUs)",
    )
    parser.add_argument("--restaurants", type=int, default=20, help="restaurants per backlog")
    parser.add_argument("--latency-orders", type=int, default=300)
    parser.add_argument("--rate", type=float, default=100.0, help="orders/s in part 3")
    parser.add_argument(
        "--low-rate", type=float, default=25.0, help="orders/s of the second 3b load (3b')"
    )
    parser.add_argument("--low-orders", type=int, default=100, help="orders in 3b' (0 skips)")
    parser.add_argument("--http-orders", type=int, default=100, help="0 skips part 3c")
    parser.add_argument(
        "--no-subprocesses",
        dest="subprocesses",
        action="store_false",
        help="skip 3b and 3c (coffeeshop serve/relay/projector subprocesses)",
    )
    parser.add_argument("--partitions", type=int, default=1, help="BUS_PARTITIONS")
    parser.add_argument("--limit-seconds", type=float, default=2.0)
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each limit")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    quiet_logging()
    baseline_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    settings = make_bench_settings(args)
    assert settings.redis_url is not None
    report = Report()
    progress(f"preparing database {DB_NAME} and Redis db {REDIS_DB}")
    flush_redis(settings.redis_url)
    engine = prepare_database(settings, args.mysql)
    engine.dispose()
    container = build_container(settings)
    child_rss: dict[str, float] = {}
    try:
        mariadb, redis_line = server_facts(container.engine, settings.redis_url)
        limits = measure_limits(settings, args.limit_seconds, args.reps, report)

        # 2a: backlog A, projectors straight from the store
        progress(f"backlog A: {args.restaurants} restaurants with menus (commands)")
        shops_a = open_shops(container, "a", args.restaurants)
        begin = time.perf_counter()
        appended = append_backlog(container, shops_a, args.orders, seed=1)
        load_s = time.perf_counter() - begin
        events_a = sum(heads_of(container, shops_a).values())
        progress(f"backlog A: {events_a} events ({appended} order events in {load_s:.1f}s)")
        catch_up_each(container, report, limits, events_a)
        loader_rate = appended / load_s
        report.add(
            "(backlog loader: append_many, 10 orders/txn, 4 threads)",
            loader_rate,
            "events/s",
            ratio(loader_rate, limits.commit_batched, "rows/s@100"),
        )
        with container.engine.begin() as conn:
            # Catch-up never reads the outbox; empty it so the relay below publishes only B.
            conn.execute(outbox.delete())

        # 2b: backlog B through relay + Redis Streams + projectors
        progress(f"backlog B: {args.restaurants} restaurants with menus (commands)")
        shops_b = open_shops(container, "b", args.restaurants)
        bus_drain(settings, container, shops_b, args, report, limits)

        # 3: latency
        watcher = Watcher(settings)
        try:
            in_process_latency(settings, container, shops_b, args, report, limits, watcher)
            if args.subprocesses:
                try:
                    child_rss = separate_processes(
                        settings, container, shops_b, args, report, limits, watcher
                    )
                except Exception as exc:
                    report.notes.append(f"the subprocess part (3b/3c) failed: {exc}")
                    progress(f"the subprocess part failed: {exc!r}")
        finally:
            watcher.close()

        # 4: memory
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        report.section("4. peak RSS (VmHWM)")
        report.add(
            "bench process (all in-process parts)",
            peak,
            "MB",
            ratio(peak, baseline_rss, "RSS after imports"),
        )
        for name, value in child_rss.items():
            report.add(
                f"coffeeshop {name} subprocess",
                value,
                "MB",
                ratio(value, baseline_rss, "bench RSS after imports"),
            )

        relay_batch = inspect.signature(Relay).parameters["batch_size"].default
        store_batch = inspect.signature(Projector).parameters["batch_size"].default
        report.header = [
            "coffeeshop read-side bench (bench/read_side.py)",
            f"  {mariadb}, database {DB_NAME}",
            f"  {redis_line}",
            f"  Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
            f"{os.cpu_count()} CPUs",
            f"  bus partitions={settings.bus_partitions}, relay batch={relay_batch} (pipelined "
            f"XADD), bus read batch={BUS_BATCH}, projector store batch={store_batch}, "
            "rate limiting off",
            f"  backlogs A (2a) and B (2b): {args.orders} orders each over {args.restaurants} "
            "restaurants (placed/started/ready/served/paid, 5% cancelled after starting), "
            "menus via commands",
            f"  limits: median of {args.reps} runs ({args.limit_seconds:g}s single, "
            f"{args.limit_seconds / 2:g}s batched/pipelined); every other figure: one run",
        ]
        report.notes += [
            "2a runs each projection alone on one thread; its events/s counts every event "
            "read (menu skips order events but still advances its checkpoint).",
            "2b: relay and all 4 projectors share one process and event loop (DB work in "
            "threads) with the periodic store catch-up off; drain times run from relay start.",
            "floor = one single-row INSERT+COMMIT + one single XADD (both round trips).",
            "3a/3b: commands from 16 threads on schedule; a watcher process calls get_order "
            "for each order not yet visible, then sleeps 1 ms (resolution: 1 ms + one pass). "
            "3a: relay + projectors share this process and its GIL with the load; 3b: the same "
            "load, with the relay and projectors in `coffeeshop relay` / `coffeeshop projector` "
            "subprocesses.",
            "3c: `coffeeshop serve` (1 worker) + relay + projector subprocesses; the GET waits "
            f"server-side (checkpoint polled every {consistency.POLL_INTERVAL_S * 1000:g} ms, "
            "at most CONSISTENCY_TIMEOUT_MS = 2 s, else answered stale).",
        ]
    finally:
        container.close()
        progress(f"dropping database {DB_NAME}, flushing Redis db {REDIS_DB}")
        drop_database(settings, args.mysql)
        flush_redis(settings.redis_url)
    report.notes.append(f"total bench time {time.perf_counter() - progress.start:.0f}s")
    report.print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
