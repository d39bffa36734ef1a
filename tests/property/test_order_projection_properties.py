"""Whatever the bus does, the order read models end up exactly as if each event came once, in order.

Given a random valid lifecycle for a few orders (interleaved, stored in the real event store),
when the events are delivered in several batches with random duplicates, omissions and
reordering, then the orders, order_counters and order_history rows equal those of a single
in-order delivery, and after every batch each checkpoint is the highest seq delivered so far.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select

from coffeeshop.commands import order as aggregate
from coffeeshop.events.envelope import EventMetadata, RecordedEvent, StreamRef
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
from coffeeshop.projections import order_history, orders
from coffeeshop.projections.projector import Projector
from coffeeshop.projections.tracking import checkpoint_of, checkpoint_table

TABLES = [orders.orders, orders.order_counters, order_history.order_history]
BASE = datetime(2026, 4, 1, 7, 0, tzinfo=UTC)
NEXT_STATUS = {"pending": "preparing", "preparing": "ready", "ready": "served", "served": "paid"}


@pytest.fixture(scope="module")
def store(mysql_engine: Engine) -> EventStore:
    return EventStore(mysql_engine, registry)


@dataclass
class OrderScript:
    """One order's events, valid by the Order aggregate's rules."""

    order_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    events: list[DomainEvent] = field(default_factory=list)


def line(draw: st.DrawFn, number: int) -> OrderLine:
    return OrderLine(
        line_id=str(uuid.UUID(int=number)),
        menu_item_id=str(uuid.UUID(int=10_000 + draw(st.integers(0, 3)))),
        name=draw(st.sampled_from(["Flat white", "Croissant", "Tea", "Bagel ☕"])),
        unit_price_cents=draw(st.integers(0, 2_000)),
        quantity=draw(st.integers(1, 99)),
        notes=draw(st.sampled_from(["", "no sugar", "to go"])),
    )


@st.composite
def order_script(draw: st.DrawFn) -> OrderScript:
    script = OrderScript()
    clock = iter(BASE + timedelta(seconds=n) for n in range(10_000))
    numbers = iter(range(1, 10_000))
    lines = [line(draw, next(numbers)) for _ in range(draw(st.integers(1, 3)))]
    script.events.append(
        OrderPlaced(
            order_id=script.order_id,
            table_id=draw(st.sampled_from([None, str(uuid.UUID(int=77))])),
            customer_name=draw(st.sampled_from([None, "Ana", "Zoë"])),
            notes=draw(st.sampled_from(["", "window seat"])),
            lines=tuple(lines),
            placed_at=next(clock),
        )
    )
    status = "pending"
    for _ in range(draw(st.integers(0, 7))):
        if status in {"paid", "cancelled"}:
            break
        moves = ["advance", "cancel"]
        if status in {"pending", "preparing"}:
            moves += ["add", "add", "remove"] if len(lines) > 1 else ["add", "add"]
        match draw(st.sampled_from(moves)):
            case "add":
                lines.append(line(draw, next(numbers)))
                script.events.append(OrderItemAdded(line=lines[-1]))
            case "remove":
                gone = lines.pop(draw(st.integers(0, len(lines) - 1)))
                script.events.append(OrderItemRemoved(line_id=gone.line_id))
            case "cancel":
                script.events.append(OrderCancelled(reason="changed mind", at=next(clock)))
                status = "cancelled"
            case _:
                status = NEXT_STATUS[status]
                script.events.append(_advance(status, lines, next(clock), draw))
    return script


def _advance(status: str, lines: list[OrderLine], at: datetime, draw: st.DrawFn) -> DomainEvent:
    if status == "preparing":
        return OrderPreparationStarted(at=at)
    if status == "ready":
        return OrderReady(at=at)
    if status == "served":
        return OrderServed(at=at)
    total = sum(item.unit_price_cents * item.quantity for item in lines)
    method = draw(st.sampled_from(["cash", "card", "other"]))
    return OrderPaid(method=method, amount_cents=total, tip_cents=draw(st.integers(0, 500)), at=at)


def append_interleaved(
    store: EventStore, restaurant_id: str, scripts: list[OrderScript], picks: list[int]
) -> list[RecordedEvent]:
    """Append the orders' events to the store, interleaved by ``picks``, one append each."""
    pending = {index: list(script.events) for index, script in enumerate(scripts)}
    versions = dict.fromkeys(pending, 0)
    picks_iter = iter(picks)
    while pending:
        alive = sorted(pending)
        index = alive[next(picks_iter, 0) % len(alive)]
        event = pending[index].pop(0)
        if not pending[index]:
            del pending[index]
        ref = StreamRef(restaurant_id, ORDER_STREAM, scripts[index].order_id)
        meta = EventMetadata(actor=f"user:{index}", request_id=f"req-{versions[index]}")
        store.append(ref, versions[index], [event], meta)
        versions[index] += 1
    found: list[RecordedEvent] = store.read_restaurant(restaurant_id, limit=10_000)
    return found


def snapshot(engine: Engine, restaurant_id: str) -> list[list[dict[str, Any]]]:
    with engine.connect() as conn:
        return [
            [
                dict(row._mapping)
                for row in conn.execute(
                    select(table)
                    .where(table.c.restaurant_id == restaurant_id)
                    .order_by(*table.primary_key.columns)
                )
            ]
            for table in TABLES
        ]


CHECKPOINTS = [
    checkpoint_table(name) for name in ("orders", "order_history", "menu", "daily_sales")
]


def forget(engine: Engine, restaurant_id: str) -> None:
    with engine.begin() as conn:
        for table in [*TABLES, *CHECKPOINTS]:
            conn.execute(delete(table).where(table.c.restaurant_id == restaurant_id))


@st.composite
def deliveries(draw: st.DrawFn, count: int) -> list[list[int]]:
    """Batches of seq indexes as a misbehaving bus might hand them over; the last one
    always holds the newest event, as the store-based catch-up guarantees eventually."""
    indexes = st.integers(0, count - 1)
    batches = draw(st.lists(st.lists(indexes, min_size=1, max_size=count + 3), max_size=4))
    final = draw(st.lists(indexes, max_size=count))
    return [*batches, [*final, count - 1]]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    scripts=st.lists(order_script(), min_size=1, max_size=4),
    picks=st.lists(st.integers(0, 3), max_size=40),
    data=st.data(),
)
def test_any_delivery_yields_the_rows_of_one_in_order_delivery(
    store: EventStore,
    mysql_engine: Engine,
    scripts: list[OrderScript],
    picks: list[int],
    data: st.DataObject,
) -> None:
    restaurant_id = str(uuid.uuid4())
    for script in scripts:
        script.order_id = str(uuid.uuid4())  # fresh per example: order_id is a global key
        first = script.events[0]
        assert isinstance(first, OrderPlaced)
        script.events[0] = first.model_copy(update={"order_id": script.order_id})
    events = append_interleaved(store, restaurant_id, scripts, picks)
    projectors = [Projector(m.build(), mysql_engine, store) for m in (orders, order_history)]

    for projector in projectors:
        projector.apply_batch(events)
    expected = snapshot(mysql_engine, restaurant_id)
    forget(mysql_engine, restaurant_id)

    delivered = 0
    for batch in data.draw(deliveries(len(events)), label="deliveries"):
        for projector in projectors:
            projector.apply_batch([events[index] for index in batch])
        delivered = max(delivered, *(events[index].seq for index in batch))
        with mysql_engine.connect() as conn:
            assert [checkpoint_of(conn, p.name, restaurant_id) for p in projectors] == [
                delivered
            ] * 2
    assert snapshot(mysql_engine, restaurant_id) == expected
    assert len(expected[0]) == len(scripts)
    assert len(expected[2]) == len(events)


@settings(max_examples=50, deadline=None)
@given(order_script())
def test_the_generated_orders_are_valid(script: OrderScript) -> None:
    """The scripts fold like real orders: lines never run out and a payment matches the total."""
    state = aggregate.Order()
    for event in script.events:
        state = aggregate.evolve(state, event)
    assert state.status is not aggregate.Status.NONE
    assert state.lines
    if state.status is aggregate.Status.PAID:
        assert state.paid_cents == state.total_cents
