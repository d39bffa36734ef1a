"""Per-projection, per-restaurant checkpoints and the projection's health state."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Insert,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from coffeeshop.events.locking import lock_for_write
from coffeeshop.events.schema import Timestamp, Uuid
from coffeeshop.projections.schema import metadata

checkpoints = Table(
    "projection_checkpoints",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("restaurant_id", Uuid, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

projection_states = Table(
    "projection_states",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("state", String(16), nullable=False),  # live | rebuilding | failed
    Column("last_error", Text, nullable=True),
    Column("updated_at", Timestamp, nullable=False),
)


def lock_checkpoint(conn: Connection, projection: str, restaurant_id: str, now: datetime) -> int:
    """The restaurant's checkpoint, row-locked until the caller's transaction ends."""
    lock_for_write(conn)
    query = (
        select(checkpoints.c.seq)
        .where(checkpoints.c.projection == projection, checkpoints.c.restaurant_id == restaurant_id)
        .with_for_update()
    )
    seq = conn.execute(query).scalar()
    if seq is not None:
        return int(seq)
    conn.execute(_insert_ignore(projection, restaurant_id, now))
    return int(conn.execute(query).scalar_one())


def _insert_ignore(projection: str, restaurant_id: str, now: datetime) -> Insert:
    return (
        insert(checkpoints)
        .values(projection=projection, restaurant_id=restaurant_id, seq=0, updated_at=now)
        .prefix_with("IGNORE", dialect="mysql")
        .prefix_with("IGNORE", dialect="mariadb")
        .prefix_with("OR IGNORE", dialect="sqlite")
    )


def advance(conn: Connection, projection: str, restaurant_id: str, seq: int, now: datetime) -> None:
    conn.execute(
        update(checkpoints)
        .where(checkpoints.c.projection == projection, checkpoints.c.restaurant_id == restaurant_id)
        .values(seq=seq, updated_at=now)
    )


def checkpoint_of(conn: Connection, projection: str, restaurant_id: str) -> int:
    seq = conn.execute(
        select(checkpoints.c.seq).where(
            checkpoints.c.projection == projection, checkpoints.c.restaurant_id == restaurant_id
        )
    ).scalar()
    return int(seq or 0)


def all_checkpoints(conn: Connection, projection: str) -> dict[str, int]:
    rows = conn.execute(
        select(checkpoints.c.restaurant_id, checkpoints.c.seq).where(
            checkpoints.c.projection == projection
        )
    ).all()
    return {row.restaurant_id: int(row.seq) for row in rows}


def set_state(
    conn: Connection, projection: str, state: str, now: datetime, error: str | None = None
) -> None:
    changed = conn.execute(
        update(projection_states)
        .where(projection_states.c.projection == projection)
        .values(state=state, last_error=error, updated_at=now)
    ).rowcount
    if not changed:
        conn.execute(
            insert(projection_states).values(
                projection=projection, state=state, last_error=error, updated_at=now
            )
        )


def states(conn: Connection) -> dict[str, tuple[str, str | None]]:
    rows = conn.execute(select(projection_states)).all()
    return {row.projection: (row.state, row.last_error) for row in rows}
