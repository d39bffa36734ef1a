"""Whatever the bus does, the menu and daily-sales read models equal one in-order delivery.

Given a random run of menu commands (categories created, renamed, reordered, removed; items
added, renamed, priced, moved, made (un)available, archived) and of order lifecycles (placed,
lines added and removed, started, ready, served, paid, cancelled), decided by the real
aggregates and stored in the real event store, when the stored events are delivered to the
``menu`` and ``daily_sales`` projectors in batches with random duplicates, omissions (which
the projector must fetch from the store) and reordering, then every row of every table of
both projections equals the rows of a single in-order delivery, and after every batch each
checkpoint is the highest seq delivered so far.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, select

from coffeeshop.commands import category, menu_item, order
from coffeeshop.commands.errors import DomainError
from coffeeshop.events.envelope import EventMetadata, RecordedEvent, StreamRef, StreamWrite
from coffeeshop.events.menu import CATEGORY_STREAM, MENU_ITEM_STREAM
from coffeeshop.events.orders import ORDER_STREAM
from coffeeshop.events.registry import DomainEvent, registry
from coffeeshop.events.store import EventStore
from coffeeshop.projections import daily_sales, menu
from coffeeshop.projections.projector import Projector
from coffeeshop.projections.tracking import checkpoint_of, checkpoint_table

TABLES = [*menu.TABLES, *daily_sales.TABLES]
# The night Europe/Berlin springs forward: local days and hours are not UTC's.
BASE = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)
CATEGORY_NAMES = ["Coffee", "Tea", "Cakes", "Bagels ☕"]
ITEM_NAMES = ["Latte", "Mocha", "Flat white", "Croissant", "Zoë's scone"]
DESCRIPTIONS = ["", "milky", "vegan"]
PRICES = [0, 350, 400, 1_250]


def berlin(_restaurant_id: str) -> str:
    return "Europe/Berlin"


@pytest.fixture(scope="module")
def store(mysql_engine: Engine) -> EventStore:
    return EventStore(mysql_engine, registry)


# -- a random, valid command run ------------------------------------------------------------

small = st.integers(0, 7)
maybe = st.none() | small
ops = st.one_of(
    st.tuples(st.just("cat_create"), small, st.integers(-2, 2)),
    st.tuples(st.just("cat_update"), small, maybe, st.none() | st.integers(-2, 2)),
    st.tuples(st.just("cat_remove"), small),
    st.tuples(st.just("item_add"), small, small, small, st.booleans()),
    st.tuples(st.just("item_add"), small, small, small, st.just(True)),
    st.tuples(st.just("item_update"), small, maybe, maybe, maybe, maybe),
    st.tuples(st.just("item_available"), small, st.booleans()),
    st.tuples(st.just("item_archive"), small),
    st.tuples(st.just("order_place"), st.lists(st.tuples(small, st.integers(1, 99)), max_size=3)),
    st.tuples(st.just("order_place"), st.lists(st.tuples(small, st.integers(1, 99)), max_size=3)),
    st.tuples(st.just("order_step"), small, st.sampled_from(["advance"] * 4 + ["cancel"])),
    st.tuples(st.just("order_step"), small, st.sampled_from(["add", "remove", "advance"])),
    st.tuples(st.just("order_pay"), small, st.integers(0, 500), st.sampled_from(["cash", "card"])),
)
lifecycles = st.tuples(
    st.just("order_run"),
    st.lists(st.tuples(small, st.integers(1, 99)), min_size=1, max_size=3),
    st.sampled_from([0, 1, 2, 3, 4, 4, 4]),  # 0 pending .. 3 served, 4 paid
    st.booleans(),  # cancel at the end unless paid
    st.integers(0, 500),
    st.sampled_from(["cash", "card", "other"]),
)
minutes = st.integers(0, 240)
setup = st.tuples(
    st.lists(st.tuples(st.tuples(st.just("cat_create"), small, small), minutes), min_size=1),
    st.lists(
        st.tuples(st.tuples(st.just("item_add"), small, small, small, st.just(True)), minutes),
        min_size=2,
        max_size=6,
    ),
).map(lambda parts: [*parts[0][:3], *parts[1]])
any_op = st.sampled_from([ops, lifecycles, lifecycles]).flatmap(lambda strategy: strategy)
body = st.lists(st.tuples(any_op, minutes), min_size=1, max_size=30)
steps = st.tuples(setup, body).map(lambda parts: [*parts[0], *parts[1]])


@dataclass
class Aggregate:
    state: Any
    version: int = 0


@dataclass
class Run:
    """Interprets ops against the real deciders; refused commands are skipped."""

    store: EventStore
    restaurant_id: str
    clock: datetime = BASE
    categories: dict[str, Aggregate] = field(default_factory=dict)
    items: dict[str, Aggregate] = field(default_factory=dict)
    orders: dict[str, Aggregate] = field(default_factory=dict)
    numbers: int = 0
    last_order: str | None = None
    streams: dict[str, str] = field(default_factory=dict)

    def pick(self, pool: dict[str, Aggregate], index: int | None) -> str | None:
        if index is None or not pool:
            return None
        # Creation order, not the (random) ids: hypothesis must see the same run every time.
        return list(pool)[index % len(pool)]

    def new_id(self) -> str:
        self.numbers += 1
        return str(uuid.uuid4())

    def live_category(self, index: int) -> str | None:
        live = {k: v for k, v in self.categories.items() if not v.state.removed}
        return self.pick(live, index)

    def run(self, op: tuple[Any, ...], minutes: int) -> None:
        if op[0] == "order_run":  # one order's lifecycle, its steps a few minutes apart
            _, picks, target, cancel, tip, method = op
            self.run(("order_place", picks), minutes)
            before = self.last_order
            for _ in range(min(target, 3)):
                self.run(("order_step", -1, "advance"), 1 + minutes % 17)
            if target == 4:
                self.run(("order_pay", -1, tip, method), 1 + minutes % 29)
            elif cancel:
                self.run(("order_step", -1, "cancel"), 1 + minutes % 7)
            assert self.last_order == before
            return
        self.clock += timedelta(minutes=minutes)
        try:
            writes = self.decide(op)
        except DomainError:
            return
        writes = [w for w in writes if w[2]]
        if not writes:
            return
        self.store.append_many(
            [
                StreamWrite(StreamRef(self.restaurant_id, self.streams[sid], sid), agg.version, ev)
                for sid, agg, ev in writes
            ],
            EventMetadata(actor="user:props", request_id=f"req-{self.numbers}"),
        )
        for sid, agg, events in writes:
            fold = {
                CATEGORY_STREAM: category.evolve,
                MENU_ITEM_STREAM: menu_item.evolve,
                ORDER_STREAM: order.evolve,
            }[self.streams[sid]]
            for event in events:
                agg.state = fold(agg.state, event)
            agg.version += len(events)

    def decide(self, op: tuple[Any, ...]) -> list[tuple[str, Aggregate, tuple[DomainEvent, ...]]]:
        match op:
            case ("cat_create", name, sort_order):
                cid = self.new_id()
                agg = Aggregate(category.Category())
                command = category.CreateCategory(cid, CATEGORY_NAMES[name % 4], sort_order)
                events = category.decide(command, agg.state)
                self.categories[cid], self.streams[cid] = agg, CATEGORY_STREAM
                return [(cid, agg, tuple(events))]
            case ("cat_update", index, name, sort_order):
                cid = self.pick(self.categories, index)
                if cid is None:
                    return []
                agg = self.categories[cid]
                new_name = None if name is None else CATEGORY_NAMES[name % 4]
                command = category.UpdateCategory(new_name, sort_order)
                return [(cid, agg, tuple(category.decide(command, agg.state)))]
            case ("cat_remove", index):
                cid = self.pick(self.categories, index)
                if cid is None:
                    return []
                agg = self.categories[cid]
                return [(cid, agg, tuple(category.decide(category.RemoveCategory(), agg.state)))]
            case ("item_add", cat, name, price, available):
                cid = self.live_category(cat)
                if cid is None:
                    return []
                iid = self.new_id()
                agg = Aggregate(menu_item.MenuItem())
                command = menu_item.AddMenuItem(
                    iid,
                    cid,
                    ITEM_NAMES[name % 5],
                    DESCRIPTIONS[name % 3],
                    PRICES[price % 4],
                    available,
                )
                events = menu_item.decide(command, agg.state)
                owner = self.categories[cid]
                attach = category.decide(category.AttachItem(iid), owner.state)
                self.items[iid], self.streams[iid] = agg, MENU_ITEM_STREAM
                return [(iid, agg, tuple(events)), (cid, owner, tuple(attach))]
            case ("item_update", index, name, price, description, cat):
                iid = self.pick(self.items, index)
                if iid is None:
                    return []
                agg = self.items[iid]
                new_cat = None if cat is None else self.live_category(cat)
                command = menu_item.UpdateMenuItem(
                    name=None if name is None else ITEM_NAMES[name % 5],
                    description=None if description is None else DESCRIPTIONS[description % 3],
                    category_id=new_cat,
                    price_cents=None if price is None else PRICES[price % 4],
                )
                writes = [(iid, agg, tuple(menu_item.decide(command, agg.state)))]
                old_cat = agg.state.category_id
                if new_cat is not None and new_cat != old_cat:
                    new, old = self.categories[new_cat], self.categories[old_cat]
                    writes.append(
                        (new_cat, new, tuple(category.decide(category.AttachItem(iid), new.state)))
                    )
                    writes.append(
                        (old_cat, old, tuple(category.decide(category.DetachItem(iid), old.state)))
                    )
                return writes
            case ("item_available", index, available):
                iid = self.pick(self.items, index)
                if iid is None:
                    return []
                agg = self.items[iid]
                events = menu_item.decide(menu_item.SetAvailability(available), agg.state)
                return [(iid, agg, tuple(events))]
            case ("item_archive", index):
                iid = self.pick(self.items, index)
                if iid is None:
                    return []
                agg = self.items[iid]
                events = menu_item.decide(menu_item.ArchiveMenuItem(), agg.state)
                cid = agg.state.category_id
                owner = self.categories[cid]
                detach = category.decide(category.DetachItem(iid), owner.state)
                return [(iid, agg, tuple(events)), (cid, owner, tuple(detach))]
            case ("order_place", picks):
                oid = self.new_id()
                lines = tuple(self.line(index, quantity) for index, quantity in picks)
                agg = Aggregate(order.Order())
                command = order.PlaceOrder(oid, lines, customer_name="Zoë")
                events = order.decide(command, agg.state, self.clock)
                self.orders[oid], self.streams[oid] = agg, ORDER_STREAM
                self.last_order = oid
                return [(oid, agg, tuple(events))]
            case ("order_step", index, move):
                oid = self.last_order if index < 0 else self.pick(self.orders, index)
                if oid is None:
                    return []
                agg = self.orders[oid]
                command: order.OrderCommand
                match move:
                    case "add":
                        command = order.AddItem(self.line(index, 1 + index))
                    case "remove":
                        lines = agg.state.lines
                        if not lines:
                            return []
                        command = order.RemoveItem(lines[index % len(lines)].line_id)
                    case "cancel":
                        command = order.Cancel("changed mind")
                    case _:
                        command = {
                            order.Status.PENDING: order.StartPreparation(),
                            order.Status.PREPARING: order.MarkReady(),
                            order.Status.READY: order.Serve(),
                        }.get(agg.state.status, order.Serve())
                return [(oid, agg, tuple(order.decide(command, agg.state, self.clock)))]
            case ("order_pay", index, tip, method):
                oid = self.last_order if index < 0 else self.pick(self.orders, index)
                if oid is None:
                    return []
                agg = self.orders[oid]
                command = order.Pay(method, agg.state.total_cents, tip)
                return [(oid, agg, tuple(order.decide(command, agg.state, self.clock)))]
        raise AssertionError(op)  # pragma: no cover

    def line(self, index: int, quantity: int) -> order.LineRequest:
        iid = self.pick(self.items, index)
        item = self.items[iid].state if iid is not None else menu_item.MenuItem()
        return order.LineRequest(line_id=self.new_id(), menu_item=item, quantity=quantity)


# -- delivery -------------------------------------------------------------------------------


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
        for checkpoints in CHECKPOINTS:
            remaining = select(func.count()).where(checkpoints.c.restaurant_id == restaurant_id)
            assert conn.execute(remaining).scalar_one() == 0


@st.composite
def deliveries(draw: st.DrawFn, count: int) -> list[list[int]]:
    """Batches of event indexes as a misbehaving bus might hand them over (duplicated, lost,
    out of order); the last batch holds the newest event, as catch-up eventually guarantees."""
    indexes = st.integers(0, count - 1)
    batches = draw(st.lists(st.lists(indexes, min_size=1, max_size=count + 3), max_size=5))
    final = draw(st.lists(indexes, max_size=count))
    return [*batches, [*final, count - 1]]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(run=steps, data=st.data())
def test_any_delivery_yields_the_rows_of_one_in_order_delivery(
    store: EventStore, mysql_engine: Engine, run: list[tuple[Any, int]], data: st.DataObject
) -> None:
    restaurant_id = str(uuid.uuid4())  # fresh per example; every other id is fresh too
    script = Run(store, restaurant_id)
    for op, minutes in run:
        script.run(op, minutes)
    events: list[RecordedEvent] = store.read_restaurant(restaurant_id, limit=10_000)
    kinds = {e.type for e in events}
    note(f"stored events: {min(len(events) // 10 * 10, 40)}+")
    note(f"paid orders: {'OrderPaid' in kinds}, cancelled: {'OrderCancelled' in kinds}")
    if not events:
        return
    assert [event.seq for event in events] == list(range(1, len(events) + 1))

    in_order = [
        Projector(menu.build(), mysql_engine, store),
        Projector(daily_sales.build(berlin), mysql_engine, store),
    ]
    for projector in in_order:
        projector.apply_batch(events)
    expected = snapshot(mysql_engine, restaurant_id)
    _check_totals(expected, events)
    forget(mysql_engine, restaurant_id)
    assert snapshot(mysql_engine, restaurant_id) == [[] for _ in TABLES]

    # A small batch_size sends far-behind restaurants through chunked catch-up from the store.
    sizes = data.draw(st.lists(st.sampled_from([2, 500]), min_size=2, max_size=2), label="sizes")
    projectors = [
        Projector(menu.build(), mysql_engine, store, batch_size=sizes[0]),
        Projector(daily_sales.build(berlin), mysql_engine, store, batch_size=sizes[1]),
    ]
    delivered = 0
    for batch in data.draw(deliveries(len(events)), label="deliveries"):
        for projector in projectors:
            projector.apply_batch([events[index] for index in batch])
        delivered = max(delivered, *(events[index].seq for index in batch))
        with mysql_engine.connect() as conn:
            positions = [checkpoint_of(conn, p.name, restaurant_id) for p in projectors]
        assert positions == [delivered, delivered]
    assert snapshot(mysql_engine, restaurant_id) == expected


def _check_totals(rows: list[list[dict[str, Any]]], events: list[RecordedEvent]) -> None:
    """The in-order rows themselves add up (so the reference is not trivially empty/wrong)."""
    tables = dict(zip([table.name for table in TABLES], rows, strict=True))
    decoded = [(event, event.decode(registry)) for event in events]
    menu_events = [e for e, _ in decoded if e.stream_type in {CATEGORY_STREAM, MENU_ITEM_STREAM}]
    generation = [row["generation"] for row in tables["menu_generations"]]
    assert generation == ([len(menu_events)] if menu_events else [])
    by_type: dict[str, list[Any]] = {}
    for event, domain in decoded:
        by_type.setdefault(event.type, []).append(domain)
    placed = len(by_type.get("OrderPlaced", []))
    paid = by_type.get("OrderPaid", [])
    cancelled = len(by_type.get("OrderCancelled", []))
    days = tables["daily_sales"]
    assert sum(row["orders"] for row in days) == placed
    assert sum(row["paid_orders"] for row in days) == len(paid)
    assert sum(row["cancelled_orders"] for row in days) == cancelled
    assert sum(row["revenue_cents"] for row in days) == sum(p.amount_cents for p in paid)
    assert sum(row["tips_cents"] for row in days) == sum(p.tip_cents for p in paid)
    assert sum(row["revenue_cents"] for row in tables["daily_sales_items"]) == sum(
        p.amount_cents for p in paid
    )
    assert len(tables["sales_open_orders"]) == placed - len(paid) - cancelled
    created = len(by_type.get("CategoryCreated", [])) - len(by_type.get("CategoryRemoved", []))
    assert len(tables["menu_categories"]) == created
    assert len(tables["menu_items"]) == len(by_type.get("MenuItemAdded", []))
    archived = len(by_type.get("MenuItemArchived", []))
    assert sum(bool(row["archived"]) for row in tables["menu_items"]) == archived
