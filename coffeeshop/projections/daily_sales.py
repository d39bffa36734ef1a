"""Daily sales per restaurant and local date: the read model behind GET /reports/daily.

Days and hours are the restaurant's local ones (its IANA time zone, from ``timezone_of``).
Attribution:

- ``orders`` (and ``by_hour.orders``) count an order on the local date and hour it was
  placed (``OrderPlaced.placed_at``), whatever happened to it later;
- ``cancelled_orders`` counts a cancelled order on the date it was *placed*, so that
  ``cancelled_orders <= orders`` holds for every day;
- ``paid_orders``, ``revenue_cents`` (the amount paid, tips excluded), ``tips_cents``, the
  per-item figures and ``by_hour.revenue_cents`` go to the local date and hour of the
  payment (``OrderPaid.at``): money is counted when it came in. An order placed before
  midnight and paid after it counts as placed on one day and paid on the next.

Payment needs the order's lines, so the projection keeps its own copy of every open order
(``sales_open_orders``, with its lines, from OrderPlaced, OrderItemAdded and
OrderItemRemoved) and drops it when the order is paid or cancelled. It never reads another
projection's tables. Handlers use only event fields, so a replay reproduces every row.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
)

from coffeeshop.events import orders as ev
from coffeeshop.events.clock import as_utc
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.schema import Uuid
from coffeeshop.projections.base import Handler, Projection, decode
from coffeeshop.projections.rows import MissingRow, Rows
from coffeeshop.projections.schema import metadata
from coffeeshop.projections.tracking import checkpoint_table

NAME = "daily_sales"
CHECKPOINTS = checkpoint_table(NAME)
TimezoneOf = Callable[[str], str]
log = logging.getLogger("coffeeshop.projections.daily_sales")

daily_sales = Table(
    "daily_sales",
    metadata,
    Column("restaurant_id", Uuid, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("orders", Integer, nullable=False),
    Column("paid_orders", Integer, nullable=False),
    Column("cancelled_orders", Integer, nullable=False),
    Column("revenue_cents", BigInteger, nullable=False),
    Column("tips_cents", BigInteger, nullable=False),
)

daily_sales_items = Table(
    "daily_sales_items",
    metadata,
    Column("restaurant_id", Uuid, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("menu_item_id", Uuid, primary_key=True),
    Column("name", String(100), nullable=False),  # as on the last paid line of the day
    Column("quantity", Integer, nullable=False),
    Column("revenue_cents", BigInteger, nullable=False),
)

daily_sales_hours = Table(
    "daily_sales_hours",
    metadata,
    Column("restaurant_id", Uuid, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("hour", SmallInteger, primary_key=True),
    Column("orders", Integer, nullable=False),
    Column("revenue_cents", BigInteger, nullable=False),
)

# Private working state: orders placed and neither paid nor cancelled yet, with their lines.
sales_open_orders = Table(
    "sales_open_orders",
    metadata,
    Column("order_id", Uuid, primary_key=True),
    Column("restaurant_id", Uuid, nullable=False),
    Column("placed_day", Date, nullable=False),
    Column("lines", JSON, nullable=False),
    Index("ix_sales_open_orders_restaurant", "restaurant_id"),
)

TABLES = (daily_sales, daily_sales_items, daily_sales_hours, sales_open_orders)


def build(timezone_of: TimezoneOf) -> Projection:
    """``timezone_of``: restaurant_id -> IANA zone name (a restaurant's zone never changes)."""
    handlers = _Handlers(timezone_of)
    table: dict[str, Handler] = {
        ev.OrderPlaced.event_type: handlers.placed,
        ev.OrderItemAdded.event_type: handlers.item_added,
        ev.OrderItemRemoved.event_type: handlers.item_removed,
        ev.OrderPaid.event_type: handlers.paid,
        ev.OrderCancelled.event_type: handlers.cancelled,
    }
    return Projection(
        name=NAME, tables=TABLES, handlers=table, prefetch=handlers.prefetch, weight=2
    )


class _Handlers:
    def __init__(self, timezone_of: TimezoneOf) -> None:
        self._timezone_of = timezone_of

    def local(self, restaurant_id: str, moment: datetime) -> datetime:
        name = self._timezone_of(restaurant_id)
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r of restaurant %s; using UTC", name, restaurant_id)
            zone = ZoneInfo("UTC")
        return as_utc(moment).astimezone(zone)

    def prefetch(self, rows: Rows, events: Sequence[RecordedEvent]) -> None:
        """Load every row a batch may touch in one query per table (a handler's ``get`` of a
        row not loaded here still works, with a query of its own)."""
        closing = [e for e in events if e.type in _CHANGES_OPEN]
        rows.prefetch(sales_open_orders, ({"order_id": e.stream_id} for e in closing))
        days: set[tuple[str, date]] = set()
        hours: set[tuple[str, date, int]] = set()
        items: dict[tuple[str, str], set[date]] = defaultdict(set)  # (restaurant, order) -> days
        ordered: dict[tuple[str, str], set[str]] = defaultdict(set)  # (restaurant, order) -> items
        for event in events:
            moment = _moment(event)
            if moment is not None:
                when = self.local(event.restaurant_id, moment)
                days.add((event.restaurant_id, when.date()))
                hours.add((event.restaurant_id, when.date(), when.hour))
                if event.type == ev.OrderPaid.event_type:
                    items[(event.restaurant_id, event.stream_id)].add(when.date())
            for line in _lines_of(event):
                ordered[(event.restaurant_id, event.stream_id)].add(line.menu_item_id)
        for restaurant_id, order_id in items:
            stored = rows.get(sales_open_orders, order_id=order_id)
            for line in stored["lines"] if stored is not None else ():
                ordered[(restaurant_id, order_id)].add(line["menu_item_id"])
        rows.prefetch(daily_sales, (_day_key(r, day) for r, day in days))
        rows.prefetch(
            daily_sales_hours,
            ({"restaurant_id": r, "day": day, "hour": hour} for r, day, hour in hours),
        )
        rows.prefetch(
            daily_sales_items,
            (
                {"restaurant_id": restaurant_id, "day": day, "menu_item_id": item}
                for (restaurant_id, order_id), paid_days in items.items()
                for day in paid_days
                for item in ordered[(restaurant_id, order_id)]
            ),
        )

    def placed(self, rows: Rows, event: RecordedEvent) -> None:
        placed = decode(event, ev.OrderPlaced)
        when = self.local(event.restaurant_id, placed.placed_at)
        rows.insert(
            sales_open_orders,
            {
                "order_id": placed.order_id,
                "restaurant_id": event.restaurant_id,
                "placed_day": when.date(),
                "lines": [_line_json(line) for line in placed.lines],
            },
        )
        _add(rows, daily_sales, _day_key(event.restaurant_id, when.date()), orders=1)
        _add(rows, daily_sales_hours, _hour_key(event.restaurant_id, when), orders=1)

    def item_added(self, rows: Rows, event: RecordedEvent) -> None:
        line = decode(event, ev.OrderItemAdded).line
        open_order = _open(rows, event)
        rows.update(
            sales_open_orders,
            {"order_id": event.stream_id},
            lines=[*open_order["lines"], _line_json(line)],
        )

    def item_removed(self, rows: Rows, event: RecordedEvent) -> None:
        line_id = decode(event, ev.OrderItemRemoved).line_id
        open_order = _open(rows, event)
        lines = [line for line in open_order["lines"] if line["line_id"] != line_id]
        rows.update(sales_open_orders, {"order_id": event.stream_id}, lines=lines)

    def paid(self, rows: Rows, event: RecordedEvent) -> None:
        paid = decode(event, ev.OrderPaid)
        when = self.local(event.restaurant_id, paid.at)
        day = when.date()
        _add(
            rows,
            daily_sales,
            _day_key(event.restaurant_id, day),
            paid_orders=1,
            revenue_cents=paid.amount_cents,
            tips_cents=paid.tip_cents,
        )
        _add(
            rows,
            daily_sales_hours,
            _hour_key(event.restaurant_id, when),
            revenue_cents=paid.amount_cents,
        )
        lines = sorted(_open(rows, event)["lines"], key=lambda line: str(line["line_id"]))
        quantity: dict[str, int] = defaultdict(int)
        revenue: dict[str, int] = defaultdict(int)
        names: dict[str, str] = {}
        for line in lines:
            quantity[line["menu_item_id"]] += line["quantity"]
            revenue[line["menu_item_id"]] += line["quantity"] * line["unit_price_cents"]
            names[line["menu_item_id"]] = line["name"]
        for menu_item_id in sorted(quantity):
            _add(
                rows,
                daily_sales_items,
                {"restaurant_id": event.restaurant_id, "day": day, "menu_item_id": menu_item_id},
                quantity=quantity[menu_item_id],
                revenue_cents=revenue[menu_item_id],
                set_values={"name": names[menu_item_id]},
            )
        rows.delete(sales_open_orders, order_id=event.stream_id)

    def cancelled(self, rows: Rows, event: RecordedEvent) -> None:
        open_order = rows.get(sales_open_orders, order_id=event.stream_id)
        if open_order is not None:
            day = open_order["placed_day"]
            _add(rows, daily_sales, _day_key(event.restaurant_id, day), cancelled_orders=1)
            rows.delete(sales_open_orders, order_id=event.stream_id)


_CHANGES_OPEN = frozenset(
    {
        ev.OrderItemAdded.event_type,
        ev.OrderItemRemoved.event_type,
        ev.OrderPaid.event_type,
        ev.OrderCancelled.event_type,
    }
)


def _moment(event: RecordedEvent) -> datetime | None:
    """When an event counts in the day's figures (placing and payment), else None."""
    if event.type == ev.OrderPlaced.event_type:
        return decode(event, ev.OrderPlaced).placed_at
    if event.type == ev.OrderPaid.event_type:
        return decode(event, ev.OrderPaid).at
    return None


def _lines_of(event: RecordedEvent) -> Sequence[ev.OrderLine]:
    if event.type == ev.OrderPlaced.event_type:
        return decode(event, ev.OrderPlaced).lines
    if event.type == ev.OrderItemAdded.event_type:
        return (decode(event, ev.OrderItemAdded).line,)
    return ()


def _open(rows: Rows, event: RecordedEvent) -> Any:
    """The order's open copy; every order event after OrderPlaced finds one until it closes."""
    row = rows.get(sales_open_orders, order_id=event.stream_id)
    if row is None or row["restaurant_id"] != event.restaurant_id:
        raise MissingRow(f"no open order {event.stream_id}; cannot apply {event.type}")
    return row


def _line_json(line: ev.OrderLine) -> dict[str, Any]:
    return {
        "line_id": line.line_id,
        "menu_item_id": line.menu_item_id,
        "name": line.name,
        "unit_price_cents": line.unit_price_cents,
        "quantity": line.quantity,
    }


def _day_key(restaurant_id: str, day: date) -> dict[str, Any]:
    return {"restaurant_id": restaurant_id, "day": day}


def _hour_key(restaurant_id: str, when: datetime) -> dict[str, Any]:
    return {"restaurant_id": restaurant_id, "day": when.date(), "hour": when.hour}


_ZEROS: dict[Table, dict[str, int]] = {
    daily_sales: {
        "orders": 0,
        "paid_orders": 0,
        "cancelled_orders": 0,
        "revenue_cents": 0,
        "tips_cents": 0,
    },
    daily_sales_items: {"quantity": 0, "revenue_cents": 0},
    daily_sales_hours: {"orders": 0, "revenue_cents": 0},
}


def _add(
    rows: Rows,
    table: Table,
    key: dict[str, Any],
    set_values: dict[str, Any] | None = None,
    **deltas: int,
) -> None:
    """Add ``deltas`` to the counters of the row at ``key``, creating it (zeros) if missing."""
    rows.add(table, key, zeros=_ZEROS[table], deltas=deltas, values=set_values)
