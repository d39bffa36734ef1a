"""The ``order_history`` read model: every event of every order, with who sent it and when."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table

from coffeeshop.events.clock import naive_utc
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.orders import (
    OrderCancelled,
    OrderItemAdded,
    OrderItemRemoved,
    OrderPaid,
    OrderPlaced,
    OrderPreparationStarted,
    OrderReady,
    OrderServed,
)
from coffeeshop.events.schema import Timestamp, Uuid
from coffeeshop.projections.base import Projection
from coffeeshop.projections.rows import Rows
from coffeeshop.projections.schema import metadata
from coffeeshop.projections.tracking import checkpoint_table

NAME = "order_history"
CHECKPOINTS = checkpoint_table(NAME)
ORDER_EVENTS = (
    OrderPlaced,
    OrderItemAdded,
    OrderItemRemoved,
    OrderPreparationStarted,
    OrderReady,
    OrderServed,
    OrderPaid,
    OrderCancelled,
)

order_history = Table(
    "order_history",
    metadata,
    # Keyed by the event's place in its restaurant's sequence, not by (order_id, version):
    # rows then arrive in key order (one insertion point per restaurant), where random order
    # ids sent every insert of a rebuild to a random page of a table bigger than the cache.
    Column("restaurant_id", Uuid, primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("order_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("data", JSON, nullable=False),
    Column("actor", String(255), nullable=True),
    Column("request_id", String(255), nullable=True),
    Column("recorded_at", Timestamp, nullable=False),
    Index("ix_order_history_restaurant_order", "restaurant_id", "order_id", "version"),
)


def build() -> Projection:
    handlers = {kind.event_type: _recorded for kind in ORDER_EVENTS}
    # One row per event: the heaviest to rebuild.
    return Projection(name=NAME, tables=(order_history,), handlers=handlers, weight=3)


def _recorded(rows: Rows, event: RecordedEvent) -> None:
    """The payload as stored (upcast to the current schema), never re-serialised."""
    rows.insert(
        order_history,
        {
            "order_id": event.stream_id,
            "version": event.version,
            "restaurant_id": event.restaurant_id,
            "seq": event.seq,
            "type": event.type,
            "data": event.data,
            "actor": _text(event.metadata.get("actor")),
            "request_id": _text(event.metadata.get("request_id")),
            "recorded_at": naive_utc(event.recorded_at),
        },
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)
