"""The daily_sales projection and report on both backends, from events built by hand.

Times are chosen around local midnight in Europe/Berlin (UTC+1 in winter, +2 in summer), so
the UTC date and the restaurant's date differ.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

from coffeeshop.events.envelope import StreamRef
from coffeeshop.events.orders import (
    ORDER_STREAM,
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
from coffeeshop.events.registry import DomainEvent, registry
from coffeeshop.events.store import EventStore
from coffeeshop.projections import daily_sales
from coffeeshop.projections.daily_sales import sales_open_orders
from coffeeshop.projections.projector import Projector
from coffeeshop.queries.reports import DailyReport, daily_report

LATTE, BAGEL, TEA, MUFFIN = (str(uuid.uuid4()) for _ in range(4))


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def line(menu_item_id: str, name: str, price: int, quantity: int) -> OrderLine:
    return OrderLine(
        line_id=str(uuid.uuid4()),
        menu_item_id=menu_item_id,
        name=name,
        unit_price_cents=price,
        quantity=quantity,
    )


class Sales:
    """One restaurant's orders as events in the store, and the projection over them."""

    def __init__(self, engine: Engine, zone: str = "Europe/Berlin") -> None:
        self.engine = engine
        self.restaurant_id = str(uuid.uuid4())
        self.store = EventStore(engine, registry)
        zones = {self.restaurant_id: zone}
        self.projector = Projector(
            daily_sales.build(lambda rid: zones.get(rid, "UTC")), engine, self.store
        )
        self._versions: dict[str, int] = {}

    def _append(self, order_id: str, *events: DomainEvent) -> None:
        version = self._versions.get(order_id, 0)
        self.store.append(StreamRef(self.restaurant_id, ORDER_STREAM, order_id), version, events)
        self._versions[order_id] = version + len(events)

    def place(self, at: datetime, *lines: OrderLine) -> str:
        order_id = str(uuid.uuid4())
        placed = OrderPlaced(
            order_id=order_id,
            table_id=None,
            customer_name=None,
            notes="",
            lines=lines,
            placed_at=at,
        )
        self._append(order_id, placed)
        return order_id

    def add(self, order_id: str, added: OrderLine) -> None:
        self._append(order_id, OrderItemAdded(line=added))

    def remove(self, order_id: str, line_id: str) -> None:
        self._append(order_id, OrderItemRemoved(line_id=line_id))

    def pay(self, order_id: str, at: datetime, amount: int, tip: int = 0) -> None:
        self._append(
            order_id,
            OrderPreparationStarted(at=at),
            OrderReady(at=at),
            OrderServed(at=at),
            OrderPaid(method="card", amount_cents=amount, tip_cents=tip, at=at),
        )

    def cancel(self, order_id: str, at: datetime) -> None:
        self._append(order_id, OrderCancelled(reason="changed their mind", at=at))

    def project(self) -> int:
        return self.projector.catch_up_restaurant(
            self.restaurant_id, self.store.head(self.restaurant_id)
        )

    def report(self, day: date) -> DailyReport:
        return daily_report(self.engine, self.restaurant_id, day)

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        found = {}
        with self.engine.connect() as conn:
            for table in daily_sales.TABLES:
                rows = conn.execute(
                    select(table)
                    .where(table.c.restaurant_id == self.restaurant_id)
                    .order_by(*table.primary_key.columns)
                ).all()
                found[table.name] = [dict(row._mapping) for row in rows]
        return found

    def reset(self) -> None:
        with self.engine.begin() as conn:
            for table in daily_sales.TABLES:
                conn.execute(delete(table).where(table.c.restaurant_id == self.restaurant_id))
            conn.execute(
                delete(daily_sales.CHECKPOINTS).where(
                    daily_sales.CHECKPOINTS.c.restaurant_id == self.restaurant_id
                )
            )


def hours(report: DailyReport) -> dict[int, tuple[int, int]]:
    """The non-empty hours: hour -> (orders, revenue_cents)."""
    assert [h.hour for h in report.by_hour] == list(range(24))
    return {
        h.hour: (h.orders, h.revenue_cents) for h in report.by_hour if h.orders or h.revenue_cents
    }


def _a_berlin_weekend(sales: Sales) -> dict[str, Any]:
    """Four orders around the local midnights of Saturday 14 and Sunday 15 March 2026."""
    # 23:30 UTC on the 14th is 00:30 on the 15th in Berlin: it belongs to the 15th.
    a = sales.place(
        utc(2026, 3, 14, 23, 30), line(LATTE, "Latte", 450, 2), line(BAGEL, "Bagel", 250, 1)
    )
    sales.pay(a, utc(2026, 3, 14, 23, 50), amount=1150, tip=100)
    # 10:00 UTC = 11:00 local; lines change before payment.
    tea = line(TEA, "Tea", 300, 3)
    b = sales.place(utc(2026, 3, 15, 10, 0), line(LATTE, "Latte", 450, 1), tea)
    sales.add(b, line(MUFFIN, "Muffin", 275, 1))
    sales.remove(b, tea.line_id)
    sales.pay(b, utc(2026, 3, 15, 10, 20), amount=725, tip=75)
    # Cancelled: counted as an order of the 15th, never as revenue.
    c = sales.place(utc(2026, 3, 15, 12, 0), line(TEA, "Tea", 300, 5))
    sales.cancel(c, utc(2026, 3, 15, 12, 5))
    # Placed at 23:30 local on the 15th, paid at 00:10 local on the 16th.
    d = sales.place(utc(2026, 3, 15, 22, 30), line(BAGEL, "Bagel", 250, 4))
    sales.pay(d, utc(2026, 3, 15, 23, 10), amount=1000, tip=0)
    return {"a": a, "b": b, "c": c, "d": d}


@pytest.fixture
def sales(engine: Engine) -> Sales:
    return Sales(engine)


def test_orders_land_on_the_restaurants_local_day(sales: Sales) -> None:
    _a_berlin_weekend(sales)
    sales.project()

    saturday = sales.report(date(2026, 3, 14))
    assert saturday.orders == saturday.paid_orders == saturday.revenue_cents == 0
    assert hours(saturday) == {}

    sunday = sales.report(date(2026, 3, 15))
    assert sunday.date == date(2026, 3, 15)
    assert sunday.orders == 4  # a, b, c and d were placed on Sunday, local time
    assert sunday.cancelled_orders == 1
    assert sunday.paid_orders == 2  # a and b; d was paid on Monday
    assert sunday.revenue_cents == 1150 + 725
    assert sunday.tips_cents == 175
    assert sunday.average_ticket_cents == (1150 + 725) // 2 == 937
    assert [(t.menu_item_id, t.name, t.quantity, t.revenue_cents) for t in sunday.top_items] == [
        (LATTE, "Latte", 3, 1350),
        (MUFFIN, "Muffin", 1, 275),  # ties on quantity go to the higher revenue
        (BAGEL, "Bagel", 1, 250),
    ]
    assert hours(sunday) == {0: (1, 1150), 11: (1, 725), 13: (1, 0), 23: (1, 0)}

    monday = sales.report(date(2026, 3, 16))
    assert (monday.orders, monday.paid_orders, monday.cancelled_orders) == (0, 1, 0)
    assert (monday.revenue_cents, monday.tips_cents, monday.average_ticket_cents) == (1000, 0, 1000)
    assert [(t.menu_item_id, t.quantity, t.revenue_cents) for t in monday.top_items] == [
        (BAGEL, 4, 1000)
    ]
    assert hours(monday) == {0: (0, 1000)}


def test_a_day_without_orders_is_all_zeros(sales: Sales) -> None:
    report = sales.report(date(2026, 1, 1))
    assert report.model_dump() == {
        "date": date(2026, 1, 1),
        "orders": 0,
        "paid_orders": 0,
        "cancelled_orders": 0,
        "revenue_cents": 0,
        "tips_cents": 0,
        "average_ticket_cents": 0,
        "top_items": [],
        "by_hour": [{"hour": h, "orders": 0, "revenue_cents": 0} for h in range(24)],
    }


def test_local_hours_follow_daylight_saving_time(sales: Sales) -> None:
    # Berlin moves from UTC+1 to UTC+2 at 01:00 UTC on 29 March 2026.
    before = sales.place(utc(2026, 3, 29, 0, 30), line(TEA, "Tea", 300, 1))
    after = sales.place(utc(2026, 3, 29, 1, 30), line(TEA, "Tea", 300, 1))
    sales.pay(before, utc(2026, 3, 29, 0, 40), amount=300)
    sales.pay(after, utc(2026, 3, 29, 1, 40), amount=300)
    sales.project()
    assert hours(sales.report(date(2026, 3, 29))) == {1: (1, 300), 3: (1, 300)}


def test_top_items_are_the_ten_best_sellers(sales: Sales) -> None:
    items = [(str(uuid.uuid4()), f"Item {n:02d}", n + 1) for n in range(12)]
    order = sales.place(
        utc(2026, 6, 1, 9, 0), *(line(item_id, name, 100, qty) for item_id, name, qty in items)
    )
    sales.pay(order, utc(2026, 6, 1, 9, 30), amount=sum(100 * qty for *_, qty in items))
    sales.project()
    top = sales.report(date(2026, 6, 1)).top_items
    assert [t.quantity for t in top] == list(range(12, 2, -1))
    assert [t.name for t in top] == [f"Item {n:02d}" for n in range(11, 1, -1)]


def test_open_orders_are_forgotten_once_paid_or_cancelled(sales: Sales) -> None:
    orders = _a_berlin_weekend(sales)
    still_open = sales.place(utc(2026, 3, 16, 8, 0), line(TEA, "Tea", 300, 1))
    sales.project()
    with sales.engine.connect() as conn:
        open_orders = conn.execute(
            select(sales_open_orders.c.order_id, sales_open_orders.c.lines).where(
                sales_open_orders.c.restaurant_id == sales.restaurant_id
            )
        ).all()
    assert [row.order_id for row in open_orders] == [still_open]
    assert [line["name"] for line in open_orders[0].lines] == ["Tea"]
    assert still_open not in orders.values()


def test_duplicated_and_reordered_delivery_gives_identical_rows(sales: Sales) -> None:
    _a_berlin_weekend(sales)
    events = sales.store.read_restaurant(sales.restaurant_id)
    sales.project()
    in_order = sales.rows()
    assert in_order["daily_sales"]

    rng = random.Random(1503)
    for _ in range(3):
        sales.reset()
        delivered = events + rng.sample(events, len(events) // 2)
        rng.shuffle(delivered)
        for start in range(0, len(delivered), 4):
            sales.projector.apply_batch(delivered[start : start + 4])
        assert sales.rows() == in_order

    sales.projector.apply_batch(events)
    assert sales.rows() == in_order


def test_restaurants_only_see_their_own_sales(engine: Engine) -> None:
    one, two = Sales(engine), Sales(engine, zone="UTC")
    order = one.place(utc(2026, 5, 2, 9, 0), line(LATTE, "Latte", 450, 1))
    one.pay(order, utc(2026, 5, 2, 9, 5), amount=450)
    other = two.place(utc(2026, 5, 2, 9, 0), line(TEA, "Tea", 300, 2))
    two.pay(other, utc(2026, 5, 2, 9, 5), amount=600, tip=50)
    one.project()
    two.project()
    first, second = one.report(date(2026, 5, 2)), two.report(date(2026, 5, 2))
    assert (first.orders, first.revenue_cents, first.tips_cents) == (1, 450, 0)
    assert (second.orders, second.revenue_cents, second.tips_cents) == (1, 600, 50)
    assert [t.menu_item_id for t in first.top_items] == [LATTE]
    assert hours(first) == {11: (1, 450)}  # Berlin summer time
    assert hours(second) == {9: (1, 600)}  # UTC
