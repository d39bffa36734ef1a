"""SQLite has no row locks: a transaction that reads and then writes must take the
database's write lock first, or a concurrent commit in between makes its write fail."""

from __future__ import annotations

from sqlalchemy import Connection


def lock_for_write(conn: Connection) -> None:
    """On SQLite, take the write lock now (a no-op write); elsewhere row locks do the job."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DELETE FROM outbox WHERE 0")
