"""The limits the benchmarks are measured against, each bounded to a few seconds.

(Not ``limits.py``: bench scripts run with bench/ first on sys.path, and that name would
shadow the ``limits`` library the rate limiter imports.)

Raw clients, no application code: MariaDB single-row INSERT+COMMIT/s on 1 and on 8
connections (threads, each its own PyMySQL connection), 100-row batch INSERT+COMMIT rows/s;
Redis XADD/s (one round trip each) and XREADGROUP+XACK messages/s (batches of 100, and one
at a time); and /health req/s of a running API with wrk. Scratch table, stream and consumer
group are removed afterwards.

    .venv/bin/python bench/raw_limits.py                       # MariaDB and Redis limits
    .venv/bin/python bench/raw_limits.py --base-url http://127.0.0.1:8000   # and /health with wrk
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
import redis
from sqlalchemy.engine import make_url
from stats import Measured, Table, repeat

SCRATCH_TABLE = "bench_limits_scratch"
SCRATCH_STREAM = "bench.limits.scratch"
SCRATCH_GROUP = "bench-limits"
DEFAULT_DATABASE = "mysql+pymysql://root@127.0.0.1:3306/coffeeshop_http_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
PAYLOAD = "x" * 200  # about an event row's data column
MESSAGE = {"type": "OrderPlaced", "restaurant_id": "0" * 36, "seq": "1", "data": "x" * 400}
WRK_DIR = Path(__file__).resolve().parent / "wrk"


# -- MariaDB -----------------------------------------------------------------------------------


def connect_mysql(
    url: str, database: bool = True, *, autocommit: bool = False, local_infile: bool = False
) -> pymysql.connections.Connection[Any]:
    """One raw PyMySQL connection (TLS off on loopback), into ``url``'s database or none."""
    parsed = make_url(url)
    return pymysql.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 3306,
        user=parsed.username or "root",
        password=parsed.password or "",
        database=parsed.database if database else None,
        charset="utf8mb4",
        autocommit=autocommit,
        local_infile=local_infile,
        ssl_disabled=True,
    )


def ensure_database(url: str) -> None:
    name = make_url(url).database
    conn = connect_mysql(url, database=False)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        conn.commit()
    finally:
        conn.close()


def _scratch(url: str, create: bool) -> None:
    conn = connect_mysql(url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {SCRATCH_TABLE}")
            if create:
                cur.execute(
                    f"CREATE TABLE {SCRATCH_TABLE} (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                    "restaurant_id CHAR(36) NOT NULL, payload VARCHAR(255) NOT NULL) "
                    "ENGINE=InnoDB"
                )
        conn.commit()
    finally:
        conn.close()


def mysql_insert_rate(
    url: str, seconds: float = 2.0, connections: int = 1, rows_per_commit: int = 1
) -> float:
    """Rows/s committed by ``connections`` threads, each its own connection, each committing
    every ``rows_per_commit`` rows (one multi-row INSERT) into a scratch table."""
    _scratch(url, create=True)
    try:
        conns = [connect_mysql(url) for _ in range(connections)]
        counts = [0] * connections
        start = threading.Barrier(connections + 1)
        sql = f"INSERT INTO {SCRATCH_TABLE} (restaurant_id, payload) VALUES (%s, %s)"
        rows = [(f"{n:036d}", PAYLOAD) for n in range(rows_per_commit)]

        def work(index: int, deadline_box: list[float]) -> None:
            conn = conns[index]
            with conn.cursor() as cur:
                start.wait(10)
                deadline = deadline_box[0]
                while time.perf_counter() < deadline:
                    if rows_per_commit == 1:
                        cur.execute(sql, rows[0])
                    else:
                        cur.executemany(sql, rows)
                    conn.commit()
                    counts[index] += rows_per_commit

        box = [0.0]
        threads = [threading.Thread(target=work, args=(n, box)) for n in range(connections)]
        for thread in threads:
            thread.start()
        begin = time.perf_counter()
        box[0] = begin + seconds
        start.wait(10)
        for thread in threads:
            thread.join(seconds + 30)
        elapsed = time.perf_counter() - begin
        for conn in conns:
            conn.close()
        return sum(counts) / elapsed
    finally:
        _scratch(url, create=False)


# -- Redis -------------------------------------------------------------------------------------


def xadd_rate(redis_url: str, seconds: float = 2.0) -> float:
    """XADD/s, one round trip each, of a message about a relayed OrderPlaced's size."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(SCRATCH_STREAM)
        count = 0
        deadline = time.perf_counter() + seconds
        begin = time.perf_counter()
        while time.perf_counter() < deadline:
            client.xadd(SCRATCH_STREAM, MESSAGE)  # type: ignore[arg-type]
            count += 1
        return count / (time.perf_counter() - begin)
    finally:
        client.delete(SCRATCH_STREAM)
        client.close()


def xreadgroup_rate(redis_url: str, seconds: float = 2.0, count: int = 100) -> float:
    """Messages/s read from a pre-filled stream with XREADGROUP COUNT ``count`` and acked
    (one XACK per batch), as a consumer-group subscriber does."""
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(SCRATCH_STREAM)
        prefill = 200_000 if count > 1 else 50_000
        pipe = client.pipeline(transaction=False)
        for n in range(prefill):
            pipe.xadd(SCRATCH_STREAM, MESSAGE)  # type: ignore[arg-type]
            if n % 1000 == 999:
                pipe.execute()
        pipe.execute()
        client.xgroup_create(SCRATCH_STREAM, SCRATCH_GROUP, id="0")
        read = 0
        begin = time.perf_counter()
        deadline = begin + seconds
        while time.perf_counter() < deadline:
            answer = client.xreadgroup(
                SCRATCH_GROUP, "c1", {SCRATCH_STREAM: ">"}, count=count, block=None
            )
            if not answer:
                break  # drained the pre-filled stream: the rate so far stands
            ids = [message_id for message_id, _ in answer[0][1]]  # type: ignore[index]
            client.xack(SCRATCH_STREAM, SCRATCH_GROUP, *ids)
            read += len(ids)
        return read / (time.perf_counter() - begin)
    finally:
        client.delete(SCRATCH_STREAM)
        client.close()


# -- HTTP with wrk -----------------------------------------------------------------------------


@dataclass
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int
    output: str = field(repr=False, default="")


def wrk_available() -> str | None:
    return shutil.which("wrk")


def run_wrk(
    url: str,
    *,
    connections: int = 32,
    seconds: float = 10.0,
    threads: int = 2,
    script: str = "get.lua",
    script_args: Sequence[str] = (),
) -> WrkResult:
    """One wrk run with one of bench/wrk's scripts (they count non-2xx answers and print
    exact percentiles); bounded by wrk's own duration plus a margin."""
    binary = wrk_available()
    if binary is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    argv = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(WRK_DIR / script),
        url,
        "--",
        *script_args,
    ]
    env = {**os.environ, "BENCH_WRK_DIR": str(WRK_DIR)}
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + 60, check=False, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> WrkResult:
    """bench/wrk/common.lua's summary line: ``BENCH key=value ...``."""
    found = re.search(r"^BENCH (.+)$", output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no BENCH line in wrk's output:\n{output}")
    values = dict(item.split("=", 1) for item in found.group(1).split())
    return WrkResult(
        requests_per_s=float(values["rps"]),
        p50_ms=float(values["p50_ms"]),
        p99_ms=float(values["p99_ms"]),
        requests=int(values["requests"]),
        non_2xx=int(values["non2xx"]),
        socket_errors=int(values["socket_errors"]),
        output=output,
    )


def health_rate(base_url: str, connections: int = 32, seconds: float = 3.0) -> WrkResult:
    return run_wrk(f"{base_url}/health", connections=connections, seconds=seconds)


# -- all of them -------------------------------------------------------------------------------


@dataclass
class Limits:
    commit_1: Measured
    commit_8: Measured
    batch_100: Measured
    xadd: Measured
    xread_100: Measured
    xread_1: Measured
    health: Measured | None = None


def measure(
    database_url: str,
    redis_url: str,
    *,
    runs: int = 3,
    seconds: float = 2.0,
    base_url: str | None = None,
    connections: int = 32,
    say: Callable[[str], None] = lambda _line: None,
) -> Limits:
    ensure_database(database_url)
    say(f"limits: MariaDB and Redis, {runs} x ~{seconds * 6:.0f} s")

    def each(measure_once: Callable[[], float]) -> Measured:
        return repeat(measure_once, runs)

    limits = Limits(
        commit_1=each(lambda: mysql_insert_rate(database_url, seconds, 1, 1)),
        commit_8=each(lambda: mysql_insert_rate(database_url, seconds, 8, 1)),
        batch_100=each(lambda: mysql_insert_rate(database_url, seconds / 2, 1, 100)),
        xadd=each(lambda: xadd_rate(redis_url, seconds)),
        xread_100=each(lambda: xreadgroup_rate(redis_url, seconds / 2, 100)),
        xread_1=each(lambda: xreadgroup_rate(redis_url, seconds / 2, 1)),
    )
    if base_url is not None:
        say(f"limits: /health with wrk at {connections} connections")
        limits.health = each(lambda: health_rate(base_url, connections, seconds).requests_per_s)
    return limits


def add_rows(table: Table, limits: Limits, connections: int = 32) -> None:
    table.section("limits: raw clients, no application code")
    table.add("MariaDB INSERT+COMMIT, 1 connection", limits.commit_1, "rows/s")
    table.add("MariaDB INSERT+COMMIT, 8 connections", limits.commit_8, "rows/s")
    table.add("MariaDB 100-row INSERT+COMMIT, 1 connection", limits.batch_100, "rows/s")
    table.add("Redis XADD, one round trip each", limits.xadd, "msg/s")
    table.add("Redis XREADGROUP COUNT 100 + XACK", limits.xread_100, "msg/s")
    table.add("Redis XREADGROUP COUNT 1 + XACK", limits.xread_1, "msg/s")
    if limits.health is not None:
        table.add(f"GET /health, wrk {connections} connections", limits.health, "req/s")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE,
        help="the scratch table goes here; the database is created if missing",
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS, help="scratch stream's Redis db")
    parser.add_argument("--base-url", help="a running API: also measure /health with wrk")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per single-row measurement")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    limits = measure(
        args.database_url,
        args.redis_url,
        runs=args.runs,
        seconds=args.seconds,
        base_url=args.base_url,
        connections=args.connections,
        say=lambda line: print(line, file=sys.stderr, flush=True),
    )
    table = Table()
    add_rows(table, limits, args.connections)
    table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
