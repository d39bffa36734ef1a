"""The append's own statements: a restaurant's sequence row (its append lock) and the
stream-version check.

Every append bumps the restaurant's row in ``restaurant_sequences`` first and holds that
row lock until commit, so the row is the restaurant's append lock: ``lock_sequence`` takes
it without bumping, for a writer that must decide while no one else can append.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, func, insert, select, update

from coffeeshop.events.locking import lock_for_write
from coffeeshop.events.schema import events, restaurant_sequences


class NoSequence(Exception):
    """The restaurant has no row in ``restaurant_sequences`` yet (its first append)."""


def take_sequence(conn: Connection, restaurant_id: str, count: int, now: datetime) -> int:
    """Reserve ``count`` seqs; the row lock it takes serialises this restaurant's appends.

    One round trip: MySQL/MariaDB hand the new value back through ``LAST_INSERT_ID(expr)``
    (the cursor's lastrowid), SQLite through RETURNING."""
    params = {"restaurant": restaurant_id, "count": count, "now": now}
    if conn.dialect.name in ("mysql", "mariadb"):
        result = conn.execute(_BUMP_SEQUENCE, params)
        if result.rowcount == 0:
            raise NoSequence
        return int(result.lastrowid)
    last = conn.execute(_BUMP_SEQUENCE_RETURNING, params).scalar()
    if last is None:
        raise NoSequence
    return int(last)


def lock_sequence(conn: Connection, restaurant_id: str) -> None:
    """Take the restaurant's append lock in ``conn``'s transaction, until it ends
    (``SELECT ... FOR UPDATE``; on SQLite, the database's write lock)."""
    lock_for_write(conn)
    if conn.execute(_LOCK_SEQUENCE, {"restaurant": restaurant_id}).first() is None:
        raise NoSequence


def insert_sequence(conn: Connection, restaurant_id: str, now: datetime) -> None:
    """Create the restaurant's sequence row unless it exists."""
    statement = (
        insert(restaurant_sequences)
        .values(restaurant_id=restaurant_id, last_seq=0, updated_at=now)
        .prefix_with("IGNORE", dialect="mysql")
        .prefix_with("IGNORE", dialect="mariadb")
        .prefix_with("OR IGNORE", dialect="sqlite")
    )
    conn.execute(statement)


def current_versions(conn: Connection, stream_ids: Sequence[str]) -> dict[str, int]:
    """Each stream's version, in one query; streams without events are left out (0)."""
    rows = conn.execute(_STREAM_VERSIONS, {"streams": sorted(set(stream_ids))}).all()
    return {str(stream_id): int(version) for stream_id, version in rows}


def current_version(conn: Connection, stream_id: str) -> int:
    return current_versions(conn, [stream_id]).get(stream_id, 0)


# Built once: SQLAlchemy memoises a statement object's cache key, and working one out again
# for a statement built per call (values and all) cost several percent of a placed order.
_SEQUENCE_ROW = restaurant_sequences.c.restaurant_id == bindparam("restaurant")
_BUMPED = restaurant_sequences.c.last_seq + bindparam("count")
_BUMP_SEQUENCE = (  # MySQL/MariaDB: the new value comes back as the statement's lastrowid
    update(restaurant_sequences)
    .where(_SEQUENCE_ROW)
    .values(last_seq=func.last_insert_id(_BUMPED), updated_at=bindparam("now"))
)
_BUMP_SEQUENCE_RETURNING = (
    update(restaurant_sequences)
    .where(_SEQUENCE_ROW)
    .values(last_seq=_BUMPED, updated_at=bindparam("now"))
    .returning(restaurant_sequences.c.last_seq)
)
_LOCK_SEQUENCE = select(restaurant_sequences.c.last_seq).where(_SEQUENCE_ROW).with_for_update()
_STREAM_VERSIONS = (
    select(events.c.stream_id, func.max(events.c.version))
    .where(events.c.stream_id.in_(bindparam("streams", expanding=True)))
    .group_by(events.c.stream_id)
)
