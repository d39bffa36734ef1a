"""One restaurant with a million orders, seeded in bulk through the event store, and kept.

The restaurant signs up through the identity service and gets its menu through the command
side. The orders go through ``EventStore.append_many``, ``--per-append`` orders (one stream
write each, all of an order's events) per transaction, decided by the Order aggregate's own
``decide``/``evolve``. Worker processes take turns with chunks of consecutive orders: one
restaurant's appends serialise on its sequence row, so while one commits, the others build
their next chunk. Then ``coffeeshop replay --all`` fills the read tables.

The history spans ``days`` days of opening hours (06:00-18:00 UTC) ending at ``end``: most
orders are paid (placed, started, ready, served, paid), ~4% cancelled (before or after the
kitchen started), and the last two hours' orders are still open in every status, so a
status filter selects something real.

The database is kept: ``bench_orders_dataset`` records the spec's fingerprint, the tenant,
the event count and how long seeding and the replay took; a later run with the same spec
checks the store's head and every projection's checkpoint and reuses it.

    .venv/bin/python bench/orders_dataset.py            # ensure coffeeshop_http_bench_1m
    .venv/bin/python bench/orders_dataset.py --orders 20000 --database-url ...  # a small one
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import restaurants
from databases import bench_settings, create_database, empty_and_migrate, server_of
from order_life import OrderLife
from procs import BIN
from sqlalchemy import Engine, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import make_url

from coffeeshop.api.container import build_container
from coffeeshop.api.db import make_engine
from coffeeshop.api.demo import CANCEL_REASONS, CUSTOMERS, MENU
from coffeeshop.commands import menu_item, order
from coffeeshop.events.envelope import EventMetadata, StreamRef, StreamWrite
from coffeeshop.events.orders import ORDER_STREAM
from coffeeshop.events.registry import DomainEvent, registry
from coffeeshop.events.store import EventStore
from coffeeshop.migrations.runner import upgrade
from coffeeshop.projections import tracking

GENERATOR_VERSION = 1  # bump whenever the generator writes something different for a spec
MARKER_TABLE = "bench_orders_dataset"
DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/coffeeshop_http_bench_1m?charset=utf8mb4"
PROJECTIONS = ("orders", "order_history", "menu", "daily_sales")
PROTECTED_DATABASES = frozenset({"test", "mysql", "information_schema", "performance_schema"})
OPEN_HOURS = 12  # 06:00-18:00 UTC
OPEN_TAIL = timedelta(hours=2)  # orders this close to the end are still open
SEED_TIMEOUT_S = 1800.0
REPLAY_TIMEOUT_S = 1200.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class OrdersSpec:
    orders: int = 1_000_000
    days: int = 365
    seed: int = 1
    per_append: int = 250  # orders per append_many transaction
    end: str = "2026-11-02"  # the history ends at this date's 18:00 UTC

    def fingerprint(self) -> str:
        body = {**asdict(self), "generator": GENERATOR_VERSION}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def first_day(self) -> datetime:
        return datetime.fromisoformat(self.end).replace(tzinfo=UTC) - timedelta(days=self.days - 1)

    @property
    def last_moment(self) -> datetime:
        return self.first_day + timedelta(days=self.days - 1, hours=6 + OPEN_HOURS)

    @property
    def chunks(self) -> int:
        return -(-self.orders // self.per_append)


@dataclass
class DatasetInfo:
    url: str
    spec: OrdersSpec
    restaurant_id: str
    owner_id: str
    events: int
    seeded_now: bool
    seed_seconds: float
    replay_seconds: float
    replayed_now: bool
    seeded_at: datetime

    @property
    def seed_rate(self) -> float:
        return self.events / self.seed_seconds if self.seed_seconds else 0.0


# -- the orders --------------------------------------------------------------------------------


def placed_at(spec: OrdersSpec, index: int) -> datetime:
    """Order ``index``'s time: evenly through each day's opening hours, every day alike."""
    per_day = -(-spec.orders // spec.days)
    day, within = divmod(index, per_day)
    offset = timedelta(hours=6) + timedelta(hours=OPEN_HOURS) * (within / per_day)
    return spec.first_day + timedelta(days=day) + offset


def order_events(
    spec: OrdersSpec, items: Sequence[menu_item.MenuItem], index: int, rng: random.Random
) -> tuple[str, list[DomainEvent]]:
    at = placed_at(spec, index)
    order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    chosen = rng.sample(list(items), rng.choice((1, 2, 2, 3, 3, 4)))
    lines = tuple(
        order.LineRequest(str(uuid.UUID(int=rng.getrandbits(128), version=4)), item, q)
        for item, q in zip(chosen, (rng.choice((1, 1, 1, 2, 3)) for _ in chosen), strict=True)
    )
    life = OrderLife(at)
    step = life.step
    customer = rng.choice(CUSTOMERS) if rng.random() < 0.4 else None
    step(order.PlaceOrder(order_id, lines, None, customer), 0)
    steps: int = 4  # started, ready, served, paid
    if spec.last_moment - life.at < OPEN_TAIL:
        steps = rng.randint(0, 3)  # still open: pending, preparing, ready or served
    cancel_at = rng.choice((0, 1, 1, 1)) if rng.random() < 0.04 and steps == 4 else None
    for number, command in enumerate(
        (order.StartPreparation(), order.MarkReady(), order.Serve()), start=0
    ):
        if number == cancel_at:
            step(order.Cancel(rng.choice(CANCEL_REASONS)), rng.uniform(0.5, 5))
            return order_id, life.events
        if number >= steps:
            return order_id, life.events
        step(command, rng.uniform(0.5, 6))
    if steps < 4:
        return order_id, life.events  # served, not paid yet
    tip = rng.choice((0, 0, 0, 50, 100, 150))
    step(order.Pay(rng.choice(("card", "card", "card", "cash")), life.state.total_cents, tip), 15)
    return order_id, life.events


def _append_chunk(job: tuple[str, OrdersSpec, str, list[menu_item.MenuItem], int]) -> int:
    """One append_many of ``per_append`` consecutive orders; in a worker process. The store's
    clock reads the chunk's last event time, so ``recorded_at`` never precedes a payload's."""
    url, spec, restaurant_id, items, chunk = job
    rng = random.Random(f"{spec.fingerprint()}:{chunk}")
    first = chunk * spec.per_append
    writes = []
    last = placed_at(spec, first)
    count = 0
    for index in range(first, min(spec.orders, first + spec.per_append)):
        order_id, events = order_events(spec, items, index, rng)
        writes.append(StreamWrite(StreamRef(restaurant_id, ORDER_STREAM, order_id), 0, events))
        last = max(last, *(_at(event) for event in events))
        count += len(events)
    store = EventStore(_worker_engine(url), registry, clock=lambda: last)
    store.append_many(writes, EventMetadata(actor="user:bench", request_id=f"seed-{chunk}"))
    return count


def _at(event: DomainEvent) -> datetime:
    moment = getattr(event, "at", None) or getattr(event, "placed_at", None)
    assert isinstance(moment, datetime)
    return moment


_ENGINES: dict[str, Engine] = {}  # a worker process's engine, made on its first chunk


def _worker_engine(url: str) -> Engine:
    if url not in _ENGINES:
        _ENGINES[url] = make_engine(bench_settings(url))
    return _ENGINES[url]


# -- the database ------------------------------------------------------------------------------


def _check_url(url: str) -> str:
    name = make_url(url).database or ""
    if not name or name in PROTECTED_DATABASES:
        raise SystemExit(f"refusing to seed database {name!r}")
    return name


def _create_database(url: str) -> None:
    name = _check_url(url)
    create_database(bench_settings(url), server_of(url), name)


def _ensure_marker(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (fingerprint CHAR(16) PRIMARY KEY, "
                "spec TEXT NOT NULL, restaurant_id CHAR(36) NOT NULL, owner_id CHAR(36) NOT NULL, "
                "events BIGINT NOT NULL, seeded_at DATETIME NOT NULL, seed_seconds DOUBLE NOT NULL,"
                " replay_seconds DOUBLE NULL)"
            )
        )


def _marker(engine: Engine, spec: OrdersSpec) -> dict[str, Any] | None:
    if MARKER_TABLE not in sa_inspect(engine).get_table_names():
        return None
    with engine.connect() as conn:
        row = conn.execute(
            text(f"SELECT * FROM {MARKER_TABLE} WHERE fingerprint = :f"),
            {"f": spec.fingerprint()},
        ).first()
    return None if row is None else dict(row._mapping)


def _caught_up(engine: Engine, restaurant_id: str, head: int) -> bool:
    with engine.connect() as conn:
        return all(
            tracking.checkpoint_of(conn, name, restaurant_id) >= head for name in PROJECTIONS
        )


def _head(engine: Engine, restaurant_id: str) -> int:
    store = EventStore(engine, registry)
    return store.head(restaurant_id)


# -- seeding -----------------------------------------------------------------------------------


def _open_restaurant(url: str) -> tuple[str, str, list[menu_item.MenuItem]]:
    container = build_container(bench_settings(url))
    try:
        email = f"owner-{uuid.uuid4().hex[:8]}@bench.coffeeshop.example"
        signup, ctx = restaurants.sign_up(container, "Million Orders Café", email, "b")
        items = restaurants.load_items(container, ctx, restaurants.add_menu(container, ctx, MENU))
        return signup.restaurant_id, signup.user_id, items
    finally:
        container.close()


def seed(url: str, spec: OrdersSpec, workers: int, say: Progress) -> tuple[str, str, int, float]:
    """Empty the database, migrate it, seed the tenant; (restaurant, owner, events, seconds)."""
    engine = make_engine(bench_settings(url))
    try:
        empty_and_migrate(engine)
    finally:
        engine.dispose()
    restaurant_id, owner_id, items = _open_restaurant(url)
    say(f"seeding {spec.orders:,} orders in {spec.chunks:,} appends, {workers} processes")
    begin = time.monotonic()
    events = 0
    last_say = begin
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        jobs = ((url, spec, restaurant_id, items, chunk) for chunk in range(spec.chunks))
        pending = pool.imap_unordered(_append_chunk, jobs, chunksize=4)
        for done, count in enumerate(pending, start=1):
            events += count
            if time.monotonic() - begin > SEED_TIMEOUT_S:
                pool.terminate()
                raise TimeoutError(f"seeding took longer than {SEED_TIMEOUT_S:.0f} s")
            if time.monotonic() - last_say > 10:
                last_say = time.monotonic()
                rate = events / (last_say - begin)
                say(f"  {done:,}/{spec.chunks:,} appends, {events:,} events, {rate:,.0f}/s")
    seconds = time.monotonic() - begin
    engine = make_engine(bench_settings(url))
    try:
        with engine.begin() as conn:  # nothing relays this dataset
            conn.execute(text("TRUNCATE TABLE outbox"))
    finally:
        engine.dispose()
    return restaurant_id, owner_id, events, seconds


def replay(url: str, say: Progress) -> float:
    """``coffeeshop replay --all --restart`` in a subprocess; its wall time."""
    env = {
        "DATABASE_URL": url,
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "WARNING",
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }
    say("filling the read tables: coffeeshop replay --all")
    begin = time.monotonic()
    with tempfile.TemporaryDirectory() as workdir:
        done = subprocess.run(
            [str(BIN / "coffeeshop"), "replay", "--all", "--quiet", "--restart"],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=REPLAY_TIMEOUT_S,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"coffeeshop replay failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - begin


def ensure_orders_dataset(
    url: str = DEFAULT_URL,
    spec: OrdersSpec | None = None,
    *,
    workers: int = 3,
    reseed: bool = False,
    say: Progress = lambda _line: None,
) -> DatasetInfo:
    """The dataset in ``url``: reused when its marker, head and checkpoints agree, else
    seeded (and replayed) now."""
    spec = spec or OrdersSpec()
    _create_database(url)
    engine = make_engine(bench_settings(url))
    try:
        marker = None if reseed else _marker(engine, spec)
        if marker is not None and _head(engine, marker["restaurant_id"]) != marker["events"]:
            say("the kept dataset's event count changed: seeding again")
            marker = None
        if marker is not None:
            upgrade(engine)
    finally:
        engine.dispose()
    seeded_now = marker is None
    if marker is None:
        restaurant_id, owner_id, _orders_events, seconds = seed(url, spec, workers, say)
        engine = make_engine(bench_settings(url))
        try:
            events = _head(engine, restaurant_id)  # the menu's events too: what a rerun checks
            _ensure_marker(engine)
            with engine.begin() as conn:
                conn.execute(
                    text(
                        f"INSERT INTO {MARKER_TABLE} VALUES (:f, :s, :r, :o, :e, :at, :secs, NULL)"
                    ),
                    {
                        "f": spec.fingerprint(),
                        "s": json.dumps(asdict(spec)),
                        "r": restaurant_id,
                        "o": owner_id,
                        "e": events,
                        "at": datetime.now(UTC).replace(tzinfo=None),
                        "secs": seconds,
                    },
                )
            marker = _marker(engine, spec)
        finally:
            engine.dispose()
        assert marker is not None
    engine = make_engine(bench_settings(url))
    try:
        replayed_now = not _caught_up(engine, marker["restaurant_id"], marker["events"])
        if replayed_now:
            marker["replay_seconds"] = replay(url, say)
            with engine.begin() as conn:
                conn.execute(
                    text(f"UPDATE {MARKER_TABLE} SET replay_seconds = :s WHERE fingerprint = :f"),
                    {"s": marker["replay_seconds"], "f": spec.fingerprint()},
                )
            if not _caught_up(engine, marker["restaurant_id"], marker["events"]):
                raise RuntimeError("the replay finished but the checkpoints are behind the head")
    finally:
        engine.dispose()
    return DatasetInfo(
        url=url,
        spec=spec,
        restaurant_id=marker["restaurant_id"],
        owner_id=marker["owner_id"],
        events=int(marker["events"]),
        seeded_now=seeded_now,
        seed_seconds=float(marker["seed_seconds"]),
        replay_seconds=float(marker["replay_seconds"] or 0.0),
        replayed_now=replayed_now,
        seeded_at=marker["seeded_at"],
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL, help="kept database")
    parser.add_argument("--orders", type=int, default=OrdersSpec.orders)
    parser.add_argument("--days", type=int, default=OrdersSpec.days)
    parser.add_argument("--per-append", type=int, default=OrdersSpec.per_append)
    parser.add_argument("--workers", type=int, default=3, help="seeding processes")
    parser.add_argument("--reseed", action="store_true", help="seed again even if kept")
    return parser.parse_args(argv)


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so the seeding pool's workers are terminated too."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    stop_on_sigterm()
    spec = OrdersSpec(orders=args.orders, days=args.days, per_append=args.per_append)
    begin = time.monotonic()
    info = ensure_orders_dataset(
        args.database_url,
        spec,
        workers=args.workers,
        reseed=args.reseed,
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(describe(info, time.monotonic() - begin))
    return 0


def describe(info: DatasetInfo, took: float) -> str:
    when = "now" if info.seeded_now else f"kept, seeded {info.seeded_at:%Y-%m-%d %H:%M} UTC"
    return (
        f"dataset {make_url(info.url).database}: restaurant {info.restaurant_id}, "
        f"{info.spec.orders:,} orders, {info.events:,} events over {info.spec.days} days "
        f"({when}); seeding {info.seed_seconds:.0f} s ({info.seed_rate:,.0f} events/s, "
        f"{info.spec.per_append} orders per append_many), replay {info.replay_seconds:.0f} s"
        f"{' (now)' if info.replayed_now else ''}; this setup took {took:.0f} s"
    )


if __name__ == "__main__":
    raise SystemExit(main())
