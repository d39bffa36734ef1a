"""A minimal projection for testing the read-side machinery independently of read models."""

from __future__ import annotations

import uuid

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    String,
    Table,
    select,
)

from coffeeshop.events.envelope import RecordedEvent, StreamRef
from coffeeshop.events.menu import CategoryCreated, CategoryRenamed
from coffeeshop.events.store import EventStore
from coffeeshop.projections.base import Projection
from coffeeshop.projections.rows import Rows
from coffeeshop.projections.tracking import checkpoint_table

metadata = MetaData()
event_log = Table(
    "test_event_log",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("restaurant_id", String(36), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("type", String(100), nullable=False),
)


def logging_projection(engine: Engine, name: str, fail_on: str | None = None) -> Projection:
    """Records every CategoryCreated/Renamed it applies; raises on ``fail_on`` names.
    Creates its tables (the log and its own checkpoints) in ``engine``'s database."""

    def record(rows: Rows, event: RecordedEvent) -> None:
        if fail_on is not None and event.data.get("name") == fail_on:
            raise ValueError(f"cannot apply {fail_on}")
        rows.insert(
            event_log,
            {
                "projection": name,
                "restaurant_id": event.restaurant_id,
                "seq": event.seq,
                "type": event.type,
            },
        )

    checkpoints = checkpoint_table(name, metadata)
    metadata.create_all(engine, tables=[event_log, checkpoints])
    return Projection(
        name=name,
        tables=(event_log,),
        handlers={"CategoryCreated": record, "CategoryRenamed": record},
        checkpoint=checkpoints,
    )


def applied_seqs(engine: Engine, name: str, restaurant_id: str) -> list[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(event_log.c.seq)
            .where(event_log.c.projection == name, event_log.c.restaurant_id == restaurant_id)
            .order_by(event_log.c.seq)
        ).all()
    return [row.seq for row in rows]


def append_categories(store: EventStore, restaurant_id: str, names: list[str]) -> None:
    """One new category stream per name, then a rename of the first (a mix of types)."""
    first = None
    for name in names:
        stream_id = str(uuid.uuid4())
        first = first or stream_id
        store.append(
            StreamRef(restaurant_id, "category", stream_id),
            0,
            [CategoryCreated(category_id=stream_id, name=name, sort_order=0)],
        )
    assert first is not None
    store.append(StreamRef(restaurant_id, "category", first), 1, [CategoryRenamed(name="renamed")])
