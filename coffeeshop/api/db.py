"""Engine construction: pool sizing, driver options, pool hygiene and SQLite's write locking."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, PoolResetState

from coffeeshop.api.settings import Settings
from coffeeshop.events import jsonio
from coffeeshop.events.partition import crc32

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PING_AFTER_IDLE_S = 1.0
"""A pooled connection idle longer than this is pinged before use (a busy one is not)."""
_RETURNED_AT = "coffeeshop.returned_at"
_TRANSACTION_ENDED = "coffeeshop.transaction_ended"


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
    engine = create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=3600,
        pool_reset_on_return=None,  # _skip_needless_rollbacks does it when it is needed
        # Each statement sees what committed before it: the append reads the stream
        # version after taking the restaurant's sequence lock and must not use an older snapshot.
        isolation_level="AUTOCOMMIT" if autocommit else "READ COMMITTED",
        connect_args=connect_args,
        json_serializer=jsonio.dumps,
        json_deserializer=jsonio.loads,
    )
    _ping_idle_connections(engine)
    _skip_needless_rollbacks(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """``pool_pre_ping`` costs a round trip on every checkout. A connection that was in use
    a moment ago is alive; one that sat idle may have been dropped (server restart,
    ``wait_timeout``, a failover), so only those are pinged. A failed ping invalidates the
    pool's older connections, as ``pool_pre_ping`` does, and the pool connects anew."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(
        dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        returned_at = record.info.get(_RETURNED_AT)  # None: a new connection
        if returned_at is None or time.monotonic() - returned_at <= PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError(str(error)) from error
            raise


def _skip_needless_rollbacks(engine: Engine) -> None:
    """The pool rolls back every connection returned to it, which is a wasted round trip
    after a transaction that committed or rolled back: only connections that may still be
    inside a transaction are rolled back (the pool's reset runs with
    ``pool_reset_on_return=None``). A statement after the end, an error, or a connection
    used outside a Connection's transaction makes the rollback happen."""

    def ended(conn: Any) -> None:
        conn.info[_TRANSACTION_ENDED] = True

    def not_ended(conn: Any, *_args: Any) -> None:
        conn.info[_TRANSACTION_ENDED] = False

    @event.listens_for(engine, "checkout")
    def _checked_out(_dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        record.info[_TRANSACTION_ENDED] = False

    event.listen(engine, "commit", ended)
    event.listen(engine, "rollback", ended)
    event.listen(engine, "before_cursor_execute", not_ended)

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:
        conn = context.connection
        if conn is not None and not conn.closed and not conn.invalidated:
            not_ended(conn)  # (an invalidated connection is discarded, never reset)

    @event.listens_for(engine, "reset")
    def _reset(dbapi_connection: Any, record: ConnectionPoolEntry, state: PoolResetState) -> None:
        if state.terminate_only or state.transaction_was_reset:
            return  # closing anyway, or the Connection rolled back just now
        if record is not None and record.info.get(_TRANSACTION_ENDED):
            return
        dbapi_connection.rollback()


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
