"""The ``orders`` read model: one row per order, and per-status counters for cheap totals.

Every handler updates the order row and, on a status change, moves one count between the
restaurant's ``order_counters`` rows, in the projector's transaction. Times come from the
events themselves (``placed_at``, ``at``, else ``recorded_at``), so a replay equals live.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text

from coffeeshop.events.clock import naive_utc
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.orders import (
    OrderCancelled,
    OrderItemAdded,
    OrderItemRemoved,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    OrderPreparationStarted,
    OrderReady,
    OrderServed,
)
from coffeeshop.events.schema import Timestamp, Uuid
from coffeeshop.projections.base import Handler, Projection, decode
from coffeeshop.projections.rows import Row, Rows
from coffeeshop.projections.schema import metadata
from coffeeshop.projections.tracking import checkpoint_table

NAME = "orders"
CHECKPOINTS = checkpoint_table(NAME)
PENDING, PREPARING, READY, SERVED, PAID, CANCELLED = (
    "pending",
    "preparing",
    "ready",
    "served",
    "paid",
    "cancelled",
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("restaurant_id", Uuid, nullable=False),
    Column("status", String(16), nullable=False),
    Column("table_id", Uuid, nullable=True),
    Column("customer_name", String(255), nullable=True),
    Column("notes", Text, nullable=False),
    Column("lines", JSON, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("tip_cents", BigInteger, nullable=False),
    Column("paid_cents", BigInteger, nullable=False),
    Column("payment_method", String(16), nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("started_at", Timestamp, nullable=True),
    Column("ready_at", Timestamp, nullable=True),
    Column("served_at", Timestamp, nullable=True),
    Column("paid_at", Timestamp, nullable=True),
    Column("cancelled_at", Timestamp, nullable=True),
    Column("cancel_reason", Text, nullable=True),
    Column("version", Integer, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    # Equality on the leading columns, then the keyset (created_at, order_id) in index order:
    # a page of a tenant's orders, of one status or of one table, is a short index range.
    Index(
        "ix_orders_restaurant_status_created", "restaurant_id", "status", "created_at", "order_id"
    ),
    Index("ix_orders_restaurant_created", "restaurant_id", "created_at", "order_id"),
    Index("ix_orders_table_created", "table_id", "created_at", "order_id"),
)

order_counters = Table(
    "order_counters",
    metadata,
    Column("restaurant_id", Uuid, primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("count", BigInteger, nullable=False),
)


def build() -> Projection:
    handlers: dict[str, Handler] = {
        OrderPlaced.event_type: _placed,
        OrderItemAdded.event_type: _item_added,
        OrderItemRemoved.event_type: _item_removed,
        OrderPreparationStarted.event_type: _moved(
            OrderPreparationStarted, PREPARING, "started_at"
        ),
        OrderReady.event_type: _moved(OrderReady, READY, "ready_at"),
        OrderServed.event_type: _moved(OrderServed, SERVED, "served_at"),
        OrderPaid.event_type: _paid,
        OrderCancelled.event_type: _cancelled,
    }
    return Projection(
        name=NAME,
        tables=(orders, order_counters),
        handlers=handlers,
        prefetch=_prefetch,
        weight=3,
    )


def _prefetch(rows: Rows, events: Sequence[RecordedEvent]) -> None:
    """The rows of the orders a batch changes, and the restaurants' counters, in two queries."""
    rows.prefetch(
        orders,
        ({"order_id": e.stream_id} for e in events if e.type in _CHANGES_EXISTING),
    )
    restaurants = {e.restaurant_id for e in events if e.type in _COUNTED}
    rows.prefetch(
        order_counters,
        ({"restaurant_id": r, "status": s} for r in restaurants for s in STATUSES),
    )


# -- handlers ---------------------------------------------------------------------------------


def _placed(rows: Rows, event: RecordedEvent) -> None:
    placed = decode(event, OrderPlaced)
    lines = [_line_json(line) for line in placed.lines]
    at = naive_utc(placed.placed_at)
    rows.insert(
        orders,
        {
            "order_id": event.stream_id,
            "restaurant_id": event.restaurant_id,
            "status": PENDING,
            "table_id": placed.table_id,
            "customer_name": placed.customer_name,
            "notes": placed.notes,
            "lines": lines,
            "total_cents": _total(lines),
            "tip_cents": 0,
            "paid_cents": 0,
            "created_at": at,
            "updated_at": at,
            "version": event.version,
            "last_seq": event.seq,
        },
    )
    _count(rows, event.restaurant_id, PENDING, +1)


def _item_added(rows: Rows, event: RecordedEvent) -> None:
    added = decode(event, OrderItemAdded)
    row = _current(rows, event)
    lines = [*row["lines"], _line_json(added.line)]
    _update(rows, event, row, lines=lines, total_cents=_total(lines))


def _item_removed(rows: Rows, event: RecordedEvent) -> None:
    removed = decode(event, OrderItemRemoved)
    row = _current(rows, event)
    lines = [line for line in row["lines"] if line["line_id"] != removed.line_id]
    _update(rows, event, row, lines=lines, total_cents=_total(lines))


def _moved(
    kind: type[OrderPreparationStarted | OrderReady | OrderServed], status: str, column: str
) -> Handler:
    def handle(rows: Rows, event: RecordedEvent) -> None:
        at = naive_utc(decode(event, kind).at)
        _update(rows, event, _current(rows, event), at=at, status=status, **{column: at})

    return handle


def _paid(rows: Rows, event: RecordedEvent) -> None:
    paid = decode(event, OrderPaid)
    at = naive_utc(paid.at)
    _update(
        rows,
        event,
        _current(rows, event),
        at=at,
        status=PAID,
        paid_at=at,
        paid_cents=paid.amount_cents,
        tip_cents=paid.tip_cents,
        payment_method=paid.method,
    )


def _cancelled(rows: Rows, event: RecordedEvent) -> None:
    cancelled = decode(event, OrderCancelled)
    at = naive_utc(cancelled.at)
    _update(
        rows,
        event,
        _current(rows, event),
        at=at,
        status=CANCELLED,
        cancelled_at=at,
        cancel_reason=cancelled.reason,
    )


# -- helpers ----------------------------------------------------------------------------------


def _current(rows: Rows, event: RecordedEvent) -> Row:
    """The order's row just before this event. The projector applies each event exactly once,
    in seq order, so anything else means the read model is broken: stop loudly."""
    row = rows.get(orders, order_id=event.stream_id)
    if row is None or row["restaurant_id"] != event.restaurant_id:
        raise LookupError(f"order {event.stream_id} has no row; cannot apply {event.type}")
    if row["version"] != event.version - 1:
        raise LookupError(
            f"order {event.stream_id} has version {row['version']}; "
            f"cannot apply {event.type} v{event.version}"
        )
    return row


def _update(
    rows: Rows,
    event: RecordedEvent,
    row: Row,
    at: datetime | None = None,
    **values: Any,
) -> None:
    rows.update(
        orders,
        {"order_id": event.stream_id},
        updated_at=at if at is not None else naive_utc(event.recorded_at),
        version=event.version,
        last_seq=event.seq,
        **values,
    )
    status = values.get("status")
    if status is not None and status != row["status"]:
        _count(rows, event.restaurant_id, row["status"], -1)
        _count(rows, event.restaurant_id, status, +1)


def _count(rows: Rows, restaurant_id: str, status: str, delta: int) -> None:
    """Move a status count; the checkpoint lock serialises a restaurant's projector writes."""
    rows.add(
        order_counters,
        {"restaurant_id": restaurant_id, "status": status},
        zeros={"count": 0},
        deltas={"count": delta},
    )


def _line_json(line: OrderLine) -> dict[str, Any]:
    return {
        "line_id": line.line_id,
        "menu_item_id": line.menu_item_id,
        "name": line.name,
        "unit_price_cents": line.unit_price_cents,
        "quantity": line.quantity,
        "notes": line.notes,
        "line_total_cents": line.unit_price_cents * line.quantity,
    }


def _total(lines: list[dict[str, Any]]) -> int:
    return sum(int(line["line_total_cents"]) for line in lines)


STATUSES = (PENDING, PREPARING, READY, SERVED, PAID, CANCELLED)
_COUNTED = frozenset(
    kind.event_type
    for kind in (
        OrderPlaced,
        OrderPreparationStarted,
        OrderReady,
        OrderServed,
        OrderPaid,
        OrderCancelled,
    )
)
_CHANGES_EXISTING = frozenset(
    kind.event_type
    for kind in (
        OrderItemAdded,
        OrderItemRemoved,
        OrderPreparationStarted,
        OrderReady,
        OrderServed,
        OrderPaid,
        OrderCancelled,
    )
)
