"""Replay benchmark: `coffeeshop replay --all` over a million events on MariaDB.

Beside the replay it measures, in the same run and on the same data, what MariaDB and the
driver allow: a keyset read of the whole ``events`` table (both JSON columns parsed) and a
bulk insert into a scratch copy of the ``orders`` read table. The dataset (default 1,000,000
events over 500 restaurants, see bench/seeding.py) is seeded once through the event store
into its own database, ``coffeeshop_replay_bench``, and kept for later runs; the ``test``
database is never touched.

    .venv/bin/python bench/replay.py                  # seeds on first use, then 3 runs
    .venv/bin/python bench/replay.py --skip-replay    # the dataset and the limits only
    .venv/bin/python bench/replay.py --help

Progress goes to stderr, the report to stdout. See bench/README.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from procs import BIN, Progress, tree_rss_mb
from raw_limits import connect_mysql
from seeding import (
    DatasetSpec,
    SeedInfo,
    bench_settings,
    database_name,
    database_size,
    default_workers,
    ensure_dataset,
)
from sqlalchemy import Engine, MetaData, Table, text
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateTable
from stats import megabytes, number, print_report, ratio, verdict

from coffeeshop.api.db import make_engine
from coffeeshop.api.demo import CUSTOMERS, MENU
from coffeeshop.events.jsonio import dumps as json_dumps
from coffeeshop.events.jsonio import loads as json_loads
from coffeeshop.projections import bulkload
from coffeeshop.projections.orders import orders as orders_table

DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/coffeeshop_replay_bench"
SCRATCH_TABLE = "bench_orders_scratch"
READ_BATCH = 5000
INSERT_BATCH = 1000
MIN_INSERT_ROWS = 50_000  # small datasets: still long enough to be a rate
TARGET_SECONDS = 60.0  # replay of 1M events
TARGET_SHARE_OF_INSERT = 0.25  # replay events/s vs raw bulk-insert rows/s
TARGET_RSS_MB = 500.0
POLL_S = 0.02

progress = Progress()


# -- the report --------------------------------------------------------------------------------


@dataclass
class Report:
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def section(self, title: str) -> None:
        self.rows.append((f"-- {title}", "", "", "", ""))

    def add(self, figure: str, values: Sequence[float], unit: str, versus: str = "") -> None:
        """The median of ``values``, and their range when there are several."""
        clean = [v for v in values if not math.isnan(v)]
        median = statistics.median(clean) if clean else math.nan
        spread = f"({number(min(clean))}-{number(max(clean))})" if len(clean) > 1 else ""
        self.rows.append((figure, number(median), spread, unit, versus))

    def print(self) -> None:
        width = max(len(r[0]) for r in self.rows if not r[0].startswith("-- ")) + 2
        spread = max([len(r[2]) for r in self.rows] + [9]) + 2
        table = [
            f"{'figure':<{width}}{'median':>10}  {'(min-max)':<{spread}}{'unit':<10}"
            "vs limit / target"
        ]
        table.append("-" * (width + 12 + spread + 10 + 48))
        for figure, median, low_high, unit, versus in self.rows:
            if figure.startswith("-- "):
                table.append(figure)
            else:
                table.append(
                    f"{figure:<{width}}{median:>10}  {low_high:<{spread}}{unit:<10}{versus}"
                )
        print_report(self.header, table, self.notes)


# -- raw limits --------------------------------------------------------------------------------


def keyset_read_rate(database_url: str, seconds: float) -> tuple[float, int]:
    """Rows/s of ``id > last ORDER BY id LIMIT 5000`` over ``events``, both JSON columns
    parsed (with the application's parser), until the table ends or ``seconds`` pass;
    returns (rate, rows read)."""
    conn = connect_mysql(database_url, autocommit=True)
    sql = (
        "SELECT id, event_id, restaurant_id, seq, stream_type, stream_id, version, type, "
        "schema_version, data, metadata, recorded_at FROM events WHERE id > %s "
        "ORDER BY id LIMIT %s"
    )
    try:
        with conn.cursor() as cur:
            last, rows = 0, 0
            begin = time.perf_counter()
            while time.perf_counter() - begin < seconds:
                cur.execute(sql, (last, READ_BATCH))
                batch = cur.fetchall()
                if not batch:
                    break
                for row in batch:
                    json_loads(row[9])
                    json_loads(row[10])
                last = batch[-1][0]
                rows += len(batch)
            elapsed = time.perf_counter() - begin
        return rows / elapsed, rows
    finally:
        conn.close()


def scratch_orders(engine: Engine) -> Table:
    """A scratch table shaped like the ``orders`` read table: same columns, types, indexes."""
    table = orders_table.to_metadata(MetaData(), name=SCRATCH_TABLE)
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}"))
        conn.execute(CreateTable(table))
    return table


def drop_scratch(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}"))


def order_rows(table: Table, count: int, seed: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and ``count`` rows of plausible orders (paid, a few cancelled)."""
    rng = random.Random(seed)
    items = [(name, cents) for entries in MENU.values() for name, cents in entries]
    restaurants = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(500)]
    start = datetime(2026, 10, 5, 7, tzinfo=UTC).replace(tzinfo=None)
    columns = [c.name for c in table.columns]
    rows = []
    for n in range(count):
        lines: list[dict[str, Any]] = []
        for _ in range(rng.choices((1, 2, 3, 4), weights=(45, 30, 15, 10))[0]):
            name, cents = rng.choice(items)
            quantity = rng.choice((1, 1, 1, 2, 3))
            lines.append(
                {
                    "line_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "menu_item_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "name": name,
                    "unit_price_cents": cents,
                    "quantity": quantity,
                    "notes": "",
                    "line_total_cents": cents * quantity,
                }
            )
        total = sum(int(line["line_total_cents"]) for line in lines)
        placed = start + timedelta(seconds=n * 13 + rng.random())
        cancelled = rng.random() < 0.05
        row = {
            "order_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "restaurant_id": rng.choice(restaurants),
            "status": "cancelled" if cancelled else "paid",
            "table_id": None,
            "customer_name": rng.choice(CUSTOMERS) if rng.random() < 0.45 else None,
            "notes": "",
            "lines": json_dumps(lines),
            "total_cents": total,
            "tip_cents": 0 if cancelled else rng.choice((0, 0, 50, 100)),
            "paid_cents": 0 if cancelled else total,
            "payment_method": None if cancelled else rng.choice(("card", "card", "cash")),
            "created_at": placed,
            "updated_at": placed + timedelta(minutes=25),
            "started_at": placed + timedelta(minutes=2),
            "ready_at": None if cancelled else placed + timedelta(minutes=8),
            "served_at": None if cancelled else placed + timedelta(minutes=10),
            "paid_at": None if cancelled else placed + timedelta(minutes=25),
            "cancelled_at": placed + timedelta(minutes=5) if cancelled else None,
            "cancel_reason": "customer left" if cancelled else None,
            "version": 6 if not cancelled else 3,
            "last_seq": n + 1,
        }
        rows.append(tuple(row.get(column) for column in columns))
    return columns, rows


def bulk_insert_rate(
    database_url: str,
    engine: Engine,
    rows: list[tuple[Any, ...]],
    columns: list[str],
    seconds: float,
) -> tuple[float, int]:
    """Rows/s of multi-row INSERTs (1000 rows per statement, one commit each) into the empty
    scratch table, until every row is in or ``seconds`` pass; returns (rate, rows)."""
    names = ", ".join(f"`{c}`" for c in columns)
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    raw = connect_mysql(database_url)
    try:
        with raw.cursor() as cur:

            def insert(batch: list[tuple[Any, ...]]) -> None:
                sql = f"INSERT INTO {SCRATCH_TABLE} ({names}) VALUES " + ", ".join(
                    [one] * len(batch)
                )
                cur.execute(sql, [value for row in batch for value in row])
                raw.commit()

            return _timed_batches(engine, rows, seconds, insert)
    finally:
        raw.close()


def bulk_load_rate(
    database_url: str,
    engine: Engine,
    rows: list[tuple[Any, ...]],
    columns: list[str],
    seconds: float,
) -> tuple[float, int]:
    """Rows/s of LOAD DATA LOCAL INFILE (1000 rows per file, one commit each, tab-separated
    text formatted by the replay's own formatter) into the empty scratch table."""
    names = ", ".join(f"`{c}`" for c in columns)
    sql = (
        f"LOAD DATA LOCAL INFILE %s INTO TABLE {SCRATCH_TABLE} CHARACTER SET utf8mb4 "
        f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ({names})"
    )
    raw = connect_mysql(database_url, local_infile=True)
    try:
        with raw.cursor() as cur, tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "rows.tsv"

            def load(batch: list[tuple[Any, ...]]) -> None:
                lines = ("\t".join(map(bulkload.field, row)) + "\n" for row in batch)
                path.write_text("".join(lines), encoding="utf-8")
                cur.execute(sql, (str(path),))
                raw.commit()

            return _timed_batches(engine, rows, seconds, load)
    finally:
        raw.close()


def _timed_batches(
    engine: Engine,
    rows: list[tuple[Any, ...]],
    seconds: float,
    write: Callable[[list[tuple[Any, ...]]], None],
) -> tuple[float, int]:
    """Empty the scratch table, then ``write`` ``rows`` INSERT_BATCH at a time until every
    row is in or ``seconds`` pass; returns (rows/s, rows)."""
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE TABLE {SCRATCH_TABLE}"))
    written = 0
    begin = time.perf_counter()
    while written < len(rows) and time.perf_counter() - begin < seconds:
        batch = rows[written : written + INSERT_BATCH]
        write(batch)
        written += len(batch)
    return written / (time.perf_counter() - begin), written


# -- the replay --------------------------------------------------------------------------------


@dataclass
class ReplayRun:
    seconds: float
    exit_code: int
    peak_rss_mb: float  # the largest single process (the CLI or one of its job processes)
    tree_rss_mb: float  # the whole process tree at its largest (sampled)
    output: str


def replay_env(database_url: str, home: str) -> dict[str, str]:
    """Only what the CLI needs: no REDIS_URL, nothing inherited that could configure it."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "LANG": "C.UTF-8",
        "DATABASE_URL": database_url,
        "ENVIRONMENT": "development",
        "LOG_LEVEL": "WARNING",
    }


def replay_command(batch_size: int | None, jobs: int | None) -> list[str] | None:
    """``coffeeshop replay --all --quiet`` (with --restart, so that every run is a full
    rebuild, when the command has it); None when this checkout has no replay command."""
    tool = str(BIN / "coffeeshop")
    with tempfile.TemporaryDirectory(prefix="coffeeshop-replay-") as tmp:
        probe = subprocess.run(  # own child, waited for
            [tool, "replay", "--help"],
            env=replay_env("sqlite:///unused.db", tmp),
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    if probe.returncode != 0 or "--all" not in probe.stdout:
        return None
    argv = [tool, "replay", "--all", "--quiet"]
    if "--restart" in probe.stdout:
        argv.append("--restart")
    if batch_size is not None:
        argv += ["--batch-size", str(batch_size)]
    if jobs is not None:
        argv += ["--jobs", str(jobs)]
    return argv


def start_up_seconds() -> float:
    """Wall time of `coffeeshop replay --help`: interpreter start-up and imports, which every
    replay run's wall time includes."""
    with tempfile.TemporaryDirectory(prefix="coffeeshop-replay-") as tmp:
        begin = time.perf_counter()
        subprocess.run(  # own child, waited for
            [str(BIN / "coffeeshop"), "replay", "--help"],
            env=replay_env("sqlite:///unused.db", tmp),
            cwd=tmp,
            capture_output=True,
            timeout=60,
            check=False,
        )
        return time.perf_counter() - begin


def run_replay_when_free(
    argv: list[str], database_url: str, timeout_s: float, lock_wait_s: float
) -> ReplayRun:
    """run_replay, retried while another replay holds the server-wide rebuild lock (a named
    MariaDB lock, the same in every database on the server)."""
    deadline = time.monotonic() + lock_wait_s
    while True:
        result = run_replay(argv, database_url, timeout_s)
        busy = result.exit_code != 0 and "already running" in result.output
        if not busy or time.monotonic() > deadline:
            return result
        progress("another process holds the replay lock (maybe in another database); waiting")
        time.sleep(5)


def run_replay(argv: list[str], database_url: str, timeout_s: float) -> ReplayRun:
    """One replay as a subprocess in a temporary directory (no .env there): wall time from
    start to exit; peak RSS of its whole process tree (VmRSS summed) and of its largest
    process (VmHWM), sampled every 0.1 s. Not wait4's ru_maxrss: Linux carries the high-water
    mark across exec, so a child forked from this (large) process would report ours."""
    with tempfile.TemporaryDirectory(prefix="coffeeshop-replay-") as tmp:
        log_path = Path(tmp) / "replay.log"
        with log_path.open("wb") as log:
            begin = time.perf_counter()
            process = subprocess.Popen(  # own child, reaped below by its pid
                argv,
                env=replay_env(database_url, tmp),
                cwd=tmp,
                stdout=log,
                stderr=log,
                start_new_session=True,  # its process group: the CLI and its job processes
            )
            elapsed, reaped, tree, largest, polls = math.nan, None, 0.0, 0.0, 0
            try:
                while reaped is None:
                    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
                    if pid:
                        elapsed, reaped = time.perf_counter() - begin, (status, usage)
                    elif time.perf_counter() - begin > timeout_s:
                        break
                    else:
                        if polls % 5 == 0:
                            now_total, now_largest = tree_rss_mb(process.pid)
                            tree, largest = max(tree, now_total), max(largest, now_largest)
                        polls += 1
                        time.sleep(POLL_S)
            finally:
                if reaped is None:  # timed out, or this process is being interrupted
                    os.killpg(process.pid, signal.SIGKILL)
                    _, status, usage = os.wait4(process.pid, 0)
                    reaped = (status, usage)
        status, _usage = reaped
        process.returncode = exit_code = os.waitstatus_to_exitcode(status)
        output = log_path.read_text(errors="replace")[-2000:]
    if math.isnan(elapsed):
        output += f"\n(killed after {timeout_s:.0f} s)"
    return ReplayRun(elapsed, exit_code, largest, max(tree, largest), output)


def orders_rows(engine: Engine) -> int | None:
    """Rows in the live ``orders`` table after a replay (None if it cannot be read)."""
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM orders")).scalar_one())
    except Exception:
        return None


# -- main --------------------------------------------------------------------------------------


def server_facts(engine: Engine) -> str:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT VERSION() AS version, @@innodb_flush_log_at_trx_commit AS flush, "
                "@@log_bin AS log_bin, @@sync_binlog AS sync_binlog, "
                "@@innodb_buffer_pool_size AS pool, @@innodb_doublewrite AS doublewrite"
            )
        ).one()
    return (
        f"MariaDB {row.version} (innodb_flush_log_at_trx_commit={row.flush}, "
        f"log_bin={row.log_bin}, sync_binlog={row.sync_binlog}, "
        f"innodb_doublewrite={row.doublewrite}, buffer pool {int(row.pool) // 2**20} MB)"
    )


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min) / {five:.1f} (5 min)"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_URL,
        help=f"the bench's own database, kept between runs (default {DEFAULT_URL})",
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the dataset")
    parser.add_argument("--restaurants", type=int, default=500)
    parser.add_argument("--days", type=int, default=28, help="days of history")
    parser.add_argument("--seed", type=int, default=1, help="the dataset's random seed")
    parser.add_argument(
        "--slice-minutes",
        type=int,
        default=60,
        help="seeding: simulated minutes per append_many of one restaurant",
    )
    parser.add_argument(
        "--reseed", action="store_true", help="seed again even if the kept dataset matches"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="seeding processes (default %(default)s)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure")
    parser.add_argument(
        "--replay-runs", type=int, default=None, help="replay runs (default: --runs)"
    )
    parser.add_argument(
        "--skip-replay", action="store_true", help="seed and measure the limits only"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="passed to `coffeeshop replay`"
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="passed to `coffeeshop replay` (its default: CPUs)"
    )
    parser.add_argument("--replay-timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument(
        "--lock-wait",
        type=float,
        default=600.0,
        help="how long to wait while another replay on the server holds the rebuild lock",
    )
    parser.add_argument(
        "--read-seconds", type=float, default=60.0, help="bound on each raw read run"
    )
    parser.add_argument(
        "--insert-seconds", type=float, default=60.0, help="bound on each raw insert run"
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    database_name(args.database_url)  # refuses `test` and the system schemas
    spec = DatasetSpec(
        events=args.events,
        restaurants=args.restaurants,
        days=args.days,
        seed=args.seed,
        slice_minutes=args.slice_minutes,
    )
    load_before = load_average()
    progress(f"dataset: {spec.describe()} in {make_url(args.database_url).database}")
    info = ensure_dataset(
        args.database_url, spec, reseed=args.reseed, workers=args.workers, progress=progress
    )
    if info.reused:
        progress(f"dataset kept from {info.seeded_at}: {info.events:,} events; not seeding")
    engine = make_engine(bench_settings(args.database_url))
    report = Report()
    try:
        measure(args, engine, info, report)
        mariadb = server_facts(engine)
        total, events_bytes = database_size(engine)
    finally:
        engine.dispose()
    report.header = [
        "coffeeshop replay bench (bench/replay.py)",
        f"  {mariadb}, database {make_url(args.database_url).database}",
        f"  Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; load average {load_before} at the start, "
        f"{load_average()} at the end",
        f"  dataset: {spec.describe()}",
        f"  {info.events:,} events: " + ", ".join(f"{k} {v:,}" for k, v in info.by_type.items()),
        f"  {'kept from an earlier run' if info.reused else 'seeded in this run'} "
        f"({info.seeded_at}): {info.seconds:.0f} s in all, appends {info.append_seconds:.0f} s "
        f"= {info.rate:,.0f} events/s in {info.appends:,} append_many calls, "
        f"{info.workers} processes",
        f"  on disk (allocated): {megabytes(total)} for the whole database, of which the "
        f"events table {megabytes(events_bytes)} (the rest: identity, outbox, read tables)",
        f"  each figure: median (min-max) over {args.runs} run(s)"
        + ("" if args.skip_replay else f" (replay: {args.replay_runs or args.runs})")
        + "; raw read, raw insert and replay take turns",
    ]
    report.notes.append(f"total bench time {time.perf_counter() - progress.start:.0f}s")
    report.print()
    return 0


def measure(args: argparse.Namespace, engine: Engine, info: SeedInfo, report: Report) -> None:
    """Raw read, raw insert and replay, interleaved run by run so drift hits all three."""
    replay_runs = args.replay_runs if args.replay_runs is not None else args.runs
    argv = None if args.skip_replay else replay_command(args.batch_size, args.jobs)
    if argv is None and not args.skip_replay:
        report.notes.append("`coffeeshop replay` is not available in this checkout: not run")
    orders = info.by_type.get("OrderPlaced", 0)
    table = scratch_orders(engine)
    wanted = max(orders, MIN_INSERT_ROWS)
    progress(f"raw insert: building {wanted:,} order rows (one per order, at least 50,000)")
    columns, rows = order_rows(table, wanted, seed=info.spec.seed)
    reads: list[float] = []
    read_rows: list[int] = []
    inserts: list[float] = []
    inserted: list[int] = []
    bulk_loads: list[float] = []
    replays: list[ReplayRun] = []
    live_orders: list[int | None] = []
    try:
        for run in range(max(args.runs, replay_runs if argv else 0)):
            if run < args.runs:
                progress(f"run {run + 1}: raw keyset read of events (<= {args.read_seconds:g}s)")
                rate, count = keyset_read_rate(args.database_url, args.read_seconds)
                reads.append(rate)
                read_rows.append(count)
                progress(f"run {run + 1}: {count:,} rows at {rate:,.0f} rows/s")
                progress(f"run {run + 1}: raw bulk insert (<= {args.insert_seconds:g}s)")
                rate, count = bulk_insert_rate(
                    args.database_url, engine, rows, columns, args.insert_seconds
                )
                inserts.append(rate)
                inserted.append(count)
                progress(f"run {run + 1}: {count:,} rows at {rate:,.0f} rows/s")
                progress(f"run {run + 1}: raw LOAD DATA LOCAL INFILE (<= {args.insert_seconds:g}s)")
                rate, count = bulk_load_rate(
                    args.database_url, engine, rows, columns, args.insert_seconds
                )
                bulk_loads.append(rate)
                progress(f"run {run + 1}: {count:,} rows at {rate:,.0f} rows/s")
            if argv is not None and run < replay_runs:
                progress(f"run {run + 1}: coffeeshop {' '.join(argv[1:])}")
                result = run_replay_when_free(
                    argv, args.database_url, args.replay_timeout, args.lock_wait
                )
                replays.append(result)
                live_orders.append(orders_rows(engine))
                progress(
                    f"run {run + 1}: replay exit {result.exit_code} in {result.seconds:.1f}s, "
                    f"peak RSS {result.tree_rss_mb:.0f} MB in all, "
                    f"{result.peak_rss_mb:.0f} MB in its largest process"
                )
                if result.exit_code != 0:
                    progress(f"replay output:\n{result.output}")
                    break
    finally:
        drop_scratch(engine)
    startup = start_up_seconds() if argv is not None else math.nan
    report_figures(
        args, info, report, reads, read_rows, inserts, inserted, bulk_loads, replays, startup
    )
    if argv is not None and replays:
        report.notes.append(
            f"replay command: {' '.join([Path(argv[0]).name, *argv[1:]])}, environment "
            "DATABASE_URL (no REDIS_URL), ENVIRONMENT, LOG_LEVEL=WARNING, PATH, HOME, LANG; "
            "a temporary working directory without .env"
        )
        wrong = [n for n in live_orders if n != orders]
        if wrong:
            report.notes.append(
                f"after the replays the orders table held {live_orders} rows; the store "
                f"has {orders:,} OrderPlaced events"
            )
        else:
            report.notes.append(
                f"after each replay the orders table held {orders:,} rows, one per OrderPlaced"
            )


def report_figures(
    args: argparse.Namespace,
    info: SeedInfo,
    report: Report,
    reads: list[float],
    read_rows: list[int],
    inserts: list[float],
    inserted: list[int],
    bulk_loads: list[float],
    replays: list[ReplayRun],
    startup: float,
) -> None:
    read = statistics.median(reads) if reads else math.nan
    # The replay writes with LOAD DATA where the server allows it: the faster path is the limit.
    insert = max(
        statistics.median(inserts) if inserts else math.nan,
        statistics.median(bulk_loads) if bulk_loads else math.nan,
    )
    report.section("limits (raw PyMySQL, one connection)")
    whole = "whole table" if min(read_rows, default=0) >= info.events else "time-bounded"
    report.add(
        f"keyset read of events, {READ_BATCH}/batch, JSON parsed",
        reads,
        "rows/s",
        f"{min(read_rows, default=0):,}-{max(read_rows, default=0):,} rows per run ({whole})",
    )
    report.add(
        f"bulk INSERT into an orders-shaped table, {INSERT_BATCH} rows/statement+commit",
        inserts,
        "rows/s",
        f"{min(inserted, default=0):,}-{max(inserted, default=0):,} rows per run into an "
        f"empty table (the dataset has {info.by_type.get('OrderPlaced', 0):,} orders)",
    )
    if bulk_loads:
        report.add(
            f"LOAD DATA LOCAL INFILE, same rows, {INSERT_BATCH} rows/file+commit",
            bulk_loads,
            "rows/s",
            "the replay's own bulk path; the faster of the two is the raw bulk-insert limit",
        )
    if not info.reused:
        report.section("seeding (this run)")
        report.add(
            "append_many through the EventStore",
            [info.rate],
            "events/s",
            ratio(info.rate, insert, "raw bulk insert")
            + f"; {info.events / info.appends:.1f} events per call",
        )
    if not replays:
        report.section("replay: not run")
        return
    ok = [r for r in replays if r.exit_code == 0 and not math.isnan(r.seconds)]
    seconds = [r.seconds for r in ok]
    rates = [info.events / s for s in seconds]
    rss = [r.peak_rss_mb for r in replays]
    rate = statistics.median(rates) if rates else math.nan
    title = f"replay: coffeeshop replay --all, {info.events:,} events"
    if len(ok) < len(replays):
        title += f" ({len(replays) - len(ok)} of {len(replays)} runs failed; see the notes)"
        for failed in (r for r in replays if r not in ok):
            report.notes.append(f"a replay run exited {failed.exit_code}:\n{failed.output}")
    report.section(title)
    million = 1_000_000 / rate if rate else math.nan
    report.add(
        "wall time, process start to exit",
        seconds,
        "s",
        f"1M events at this rate: {number(million)} s; target < {TARGET_SECONDS:.0f} s: "
        f"{verdict(million, TARGET_SECONDS)}",
    )
    report.add(
        "  of which process start-up and imports", [startup], "s", "(coffeeshop replay --help)"
    )
    report.add(
        "events replayed per second",
        rates,
        "events/s",
        f"{ratio(rate, insert, 'raw bulk insert')} (target >= {TARGET_SHARE_OF_INSERT:.2f}x: "
        f"{verdict(rate, TARGET_SHARE_OF_INSERT * insert, below=False)}); "
        f"{ratio(rate, read, 'raw read')}",
    )
    trees = [r.tree_rss_mb for r in replays]
    report.add(
        "peak RSS, the whole replay (CLI + job processes)",
        trees,
        "MB",
        f"target < {TARGET_RSS_MB:.0f} MB: {verdict(max(trees), TARGET_RSS_MB)} (worst run; "
        "sum of VmRSS over the process tree, sampled every 0.1 s)",
    )
    report.add(
        "peak RSS, its largest single process",
        rss,
        "MB",
        f"target < {TARGET_RSS_MB:.0f} MB: {verdict(max(rss), TARGET_RSS_MB)} (worst run; "
        "VmHWM, sampled)",
    )


if __name__ == "__main__":
    sys.exit(main())
