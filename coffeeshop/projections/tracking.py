"""Where each projection stands: per-restaurant checkpoints, health state, rebuilds, verifies.

Every projection keeps its checkpoints in a table of its own (``<name>_checkpoints``), next
to its read tables. A rebuild fills shadow copies of all of them and swaps them in with one
rename, so the read rows and the positions they reflect always change together: a live
projector that resumes after the swap simply continues from the rebuilt positions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Insert,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

from coffeeshop.events.locking import lock_for_write
from coffeeshop.events.schema import Timestamp, Uuid
from coffeeshop.projections.schema import metadata


def checkpoint_table(projection: str, schema: MetaData = metadata) -> Table:
    """The checkpoints table of ``projection`` (defined once per metadata)."""
    name = f"{projection}_checkpoints"
    existing = schema.tables.get(name)
    if existing is not None:
        return existing
    return Table(
        name,
        schema,
        Column("restaurant_id", Uuid, primary_key=True),
        Column("seq", BigInteger, nullable=False),
        Column("updated_at", Timestamp, nullable=False),
    )


projection_states = Table(
    "projection_states",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("state", String(16), nullable=False),  # live | failed
    Column("last_error", Text, nullable=True),
    Column("updated_at", Timestamp, nullable=False),
)

projection_rebuilds = Table(
    "projection_rebuilds",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("purpose", String(16), primary_key=True),  # replay | verify
    Column("part", String(16), primary_key=True),  # "k/n": restaurants of partition k of n
    Column("position", BigInteger, nullable=False),  # last events.id this part applied
    Column("applied", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("started_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

projection_verifications = Table(
    "projection_verifications",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("verified_at", Timestamp, nullable=False),
    Column("drift_rows", BigInteger, nullable=False),
    Column("summary", Text, nullable=False),
)


# -- checkpoints ---------------------------------------------------------------------------


def lock_checkpoint(conn: Connection, table: Table, restaurant_id: str, now: datetime) -> int:
    """The restaurant's checkpoint, row-locked until the caller's transaction ends."""
    lock_for_write(conn)
    query = select(table.c.seq).where(table.c.restaurant_id == restaurant_id).with_for_update()
    seq = conn.execute(query).scalar()
    if seq is not None:
        return int(seq)
    conn.execute(_insert_ignore(table, restaurant_id, now))
    return int(conn.execute(query).scalar_one())


def lock_all_checkpoints(conn: Connection, table: Table) -> dict[str, int]:
    """Every checkpoint of a projection, row-locked in restaurant order (a freeze)."""
    lock_for_write(conn)
    rows = conn.execute(
        select(table.c.restaurant_id, table.c.seq).order_by(table.c.restaurant_id).with_for_update()
    ).all()
    return {row.restaurant_id: int(row.seq) for row in rows}


def _insert_ignore(table: Table, restaurant_id: str, now: datetime) -> Insert:
    return (
        insert(table)
        .values(restaurant_id=restaurant_id, seq=0, updated_at=now)
        .prefix_with("IGNORE", dialect="mysql")
        .prefix_with("IGNORE", dialect="mariadb")
        .prefix_with("OR IGNORE", dialect="sqlite")
    )


def advance(conn: Connection, table: Table, restaurant_id: str, seq: int, now: datetime) -> None:
    conn.execute(
        update(table).where(table.c.restaurant_id == restaurant_id).values(seq=seq, updated_at=now)
    )


def _checkpoints(projection: str | Table) -> Table:
    return projection if isinstance(projection, Table) else checkpoint_table(projection)


def checkpoint_of(conn: Connection, projection: str | Table, restaurant_id: str) -> int:
    table = _checkpoints(projection)
    seq = conn.execute(select(table.c.seq).where(table.c.restaurant_id == restaurant_id)).scalar()
    return int(seq or 0)


def all_checkpoints(conn: Connection, projection: str | Table) -> dict[str, int]:
    table = _checkpoints(projection)
    rows = conn.execute(select(table.c.restaurant_id, table.c.seq)).all()
    return {row.restaurant_id: int(row.seq) for row in rows}


# -- health state --------------------------------------------------------------------------


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


# -- rebuild progress ----------------------------------------------------------------------


@dataclass(frozen=True)
class RebuildProgress:
    """One part of a rebuild, or (from :func:`rebuilds`) all its parts added up."""

    projection: str
    purpose: str
    part: str  # "2/4": the second of four partitions of the restaurants; "all" when added up
    position: int
    applied: int
    total: int
    started_at: datetime
    updated_at: datetime


def rebuild_parts(conn: Connection, projection: str, purpose: str) -> list[RebuildProgress]:
    rows = conn.execute(
        select(projection_rebuilds)
        .where(
            projection_rebuilds.c.projection == projection,
            projection_rebuilds.c.purpose == purpose,
        )
        .order_by(projection_rebuilds.c.part)
    ).all()
    return [RebuildProgress(**row._asdict()) for row in rows]


def rebuilds(conn: Connection) -> list[RebuildProgress]:
    """Every rebuild in flight, its parts added up (the slowest part's position)."""
    parts: dict[tuple[str, str], list[RebuildProgress]] = {}
    for row in conn.execute(select(projection_rebuilds)).all():
        progress = RebuildProgress(**row._asdict())
        parts.setdefault((progress.projection, progress.purpose), []).append(progress)
    return [_combined(group) for group in parts.values()]


def _combined(parts: list[RebuildProgress]) -> RebuildProgress:
    if len(parts) == 1:
        return parts[0]
    return RebuildProgress(
        projection=parts[0].projection,
        purpose=parts[0].purpose,
        part="all",
        position=min(p.position for p in parts),
        applied=sum(p.applied for p in parts),
        total=sum(p.total for p in parts),
        started_at=min(p.started_at for p in parts),
        updated_at=max(p.updated_at for p in parts),
    )


def start_rebuild(
    conn: Connection,
    projection: str,
    purpose: str,
    totals: Mapping[str, int],
    now: datetime,
    *,
    position: int = 0,
) -> None:
    """A row per part (``totals``: part -> events it will read), replacing any before."""
    finish_rebuild(conn, projection, purpose)
    conn.execute(
        insert(projection_rebuilds),
        [
            {
                "projection": projection,
                "purpose": purpose,
                "part": part,
                "position": position,
                "applied": 0,
                "total": total,
                "started_at": now,
                "updated_at": now,
            }
            for part, total in totals.items()
        ],
    )


def record_rebuild(
    conn: Connection,
    projection: str,
    purpose: str,
    part: str,
    *,
    position: int,
    applied: int,
    total: int,
    now: datetime,
) -> None:
    conn.execute(
        update(projection_rebuilds)
        .where(
            projection_rebuilds.c.projection == projection,
            projection_rebuilds.c.purpose == purpose,
            projection_rebuilds.c.part == part,
        )
        .values(position=position, applied=applied, total=total, updated_at=now)
    )


def finish_rebuild(conn: Connection, projection: str, purpose: str) -> None:
    conn.execute(
        delete(projection_rebuilds).where(
            projection_rebuilds.c.projection == projection,
            projection_rebuilds.c.purpose == purpose,
        )
    )


# -- verification results ------------------------------------------------------------------


@dataclass(frozen=True)
class Verification:
    projection: str
    verified_at: datetime
    drift_rows: int
    summary: str


def record_verification(conn: Connection, result: Verification) -> None:
    conn.execute(
        delete(projection_verifications).where(
            projection_verifications.c.projection == result.projection
        )
    )
    conn.execute(
        insert(projection_verifications).values(
            projection=result.projection,
            verified_at=result.verified_at,
            drift_rows=result.drift_rows,
            summary=result.summary,
        )
    )


def verifications(conn: Connection) -> dict[str, Verification]:
    rows = conn.execute(select(projection_verifications)).all()
    return {row.projection: Verification(**row._asdict()) for row in rows}
