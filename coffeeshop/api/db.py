"""Engine construction: pool sizing, driver options and SQLite's write locking."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from coffeeshop.api.settings import Settings
from coffeeshop.events import jsonio
from coffeeshop.events.partition import crc32

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def make_engine(
    settings: Settings,
    database_url: str | None = None,
    *,
    bulk_load: bool = False,
    autocommit: bool = False,
) -> Engine:
    """``bulk_load`` lets the engine's MySQL connections send ``LOAD DATA LOCAL INFILE``
    (a rebuild's bulk writes). It is off everywhere else: with it, a server could ask the
    client for any file the process can read, so only the replay's own engine has it.

    ``autocommit`` makes every connection of the pool autocommit from the start (the query
    engine): set per checkout instead, SQLAlchemy would spend two extra round trips on each
    one, setting the level and resetting it on return."""
    url = make_url(database_url or settings.database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url.render_as_string(hide_password=False))
    connect_args: dict[str, Any] = {}
    if url.get_driver_name() == "pymysql":
        connect_args["charset"] = url.query.get("charset", "utf8mb4")
        connect_args["local_infile"] = bulk_load
        if url.host in _LOOPBACK:
            # A new PyMySQL connection otherwise spends ~21 ms of CPU negotiating TLS.
            connect_args["ssl_disabled"] = True
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=True,
        pool_recycle=3600,
        # Each statement sees what committed before it: the append reads the stream
        # version after taking the restaurant's sequence lock and must not use an older snapshot.
        isolation_level="AUTOCOMMIT" if autocommit else "READ COMMITTED",
        connect_args=connect_args,
        json_serializer=jsonio.dumps,
        json_deserializer=jsonio.loads,
    )


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": 30},
        json_serializer=jsonio.dumps,
        json_deserializer=jsonio.loads,
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        # MySQL's CRC32(), which partitions restaurants between parallel rebuild jobs.
        dbapi_connection.create_function("crc32", 1, _crc32_or_null, deterministic=True)

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Deferred: readers never wait (WAL) and never hold the write lock. Every write
        # transaction starts with a write statement, so it takes the write lock before it
        # reads anything and cannot fail later with a stale snapshot (SQLITE_BUSY_SNAPSHOT).
        conn.exec_driver_sql("BEGIN")

    return engine


def _crc32_or_null(value: str | None) -> int | None:
    return None if value is None else crc32(value)
