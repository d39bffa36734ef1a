"""The orders and order_history projections on the real MariaDB (and the schema on SQLite too).

Given commands run through the command side (so the events are the real ones), when the
projector catches up or is handed batches the way the bus would (duplicated, reordered,
with holes), then the read tables hold exactly what the events say, and the list queries
stay on an index.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Table, func, inspect, select, text

from coffeeshop.api.container import Container, build_container
from coffeeshop.api.db import make_engine
from coffeeshop.commands.handling import CommandContext
from coffeeshop.commands.models import (
    CancellationCreate,
    CategoryCreate,
    MenuItemCreate,
    OrderCreate,
    OrderItemCreate,
    PaymentCreate,
)
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.orders import OrderCancelled
from coffeeshop.events.registry import registry
from coffeeshop.migrations.runner import upgrade
from coffeeshop.projections import order_history, orders
from coffeeshop.projections.catalog import build_projections
from coffeeshop.projections.projector import Projector
from coffeeshop.projections.rows import RowBuffer
from coffeeshop.projections.tracking import checkpoint_of
from coffeeshop.queries import orders as queries
from coffeeshop.queries.pagination import PageRequest
from tests.conftest import make_settings

READ_TABLES = [orders.orders, orders.order_counters, order_history.order_history]


class TickingClock:
    """Every reading is one second after the previous one: times are distinct and known."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture(scope="module", params=["mysql", "sqlite"])
def container(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Container]:
    """The command side and the store on MariaDB, or on a SQLite file of this module's own
    (the session's embedded app runs projectors in the background on the shared one)."""
    if request.param == "mysql":
        request.getfixturevalue("mysql_engine")
        settings = make_settings(redis_url=None)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('orders') / 'orders.db'}"
        settings = make_settings(database_url=url, redis_url=None)
        engine = make_engine(settings)
        upgrade(engine)
        engine.dispose()
    built = build_container(settings, clock=TickingClock())
    yield built
    built.close()


@dataclass
class Kitchen:
    """One fresh restaurant driven through the command side, with its projectors at hand."""

    container: Container
    restaurant_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    items: list[str] = field(default_factory=list)

    def ctx(self, actor: str = "user:chef", request_id: str | None = None) -> CommandContext:
        return CommandContext(self.restaurant_id, actor=actor, request_id=request_id)

    def menu(self, *prices: int) -> list[str]:
        menu = self.container.menu
        category = menu.create_category(self.ctx(), CategoryCreate(name="Drinks")).body["id"]
        for index, price in enumerate(prices):
            body = MenuItemCreate(name=f"Item {index}", category_id=category, price_cents=price)
            self.items.append(menu.add_item(self.ctx(), body).body["id"])
        return self.items

    def place(self, *quantities: int, **fields: Any) -> str:
        lines = [
            OrderItemCreate(menu_item_id=item, quantity=quantity)
            for item, quantity in zip(self.items, quantities or (1,), strict=False)
        ]
        body = OrderCreate(items=lines, **fields)
        order_id: str = self.container.orders.place(self.ctx(), body).body["id"]
        return order_id

    def drive(self, order_id: str, *steps: str) -> None:
        orders_ = self.container.orders
        for step in steps:
            match step:
                case "start":
                    orders_.start(self.ctx(), order_id)
                case "ready":
                    orders_.mark_ready(self.ctx(), order_id)
                case "serve":
                    orders_.serve(self.ctx(), order_id)
                case "pay":
                    total = self.order(order_id).total_cents
                    payment = PaymentCreate(method="card", amount_cents=total, tip_cents=50)
                    orders_.pay(self.ctx(), order_id, payment)
                case "cancel":
                    orders_.cancel(self.ctx(), order_id, CancellationCreate(reason="no show"))

    def projector(self, projection: Any) -> Projector:
        return Projector(projection, self.container.engine, self.container.store)

    def project(self) -> None:
        for module in (orders, order_history):
            self.projector(module.build()).catch_up()

    def order(self, order_id: str) -> queries.OrderView:
        self.project()
        view = queries.get_order(self.container.engine, self.restaurant_id, order_id)
        assert view is not None
        return view

    def events(self) -> list[RecordedEvent]:
        found: list[RecordedEvent] = self.container.store.read_restaurant(
            self.restaurant_id, limit=100_000
        )
        return found

    def rows(self, table: Table) -> list[dict[str, Any]]:
        key = list(table.primary_key.columns)
        with self.container.engine.connect() as conn:
            found = conn.execute(
                select(table).where(table.c.restaurant_id == self.restaurant_id).order_by(*key)
            )
            return [dict(row._mapping) for row in found]


@pytest.fixture
def kitchen(container: Container) -> Kitchen:
    kitchen = Kitchen(container)
    kitchen.menu(350, 420, 275)
    return kitchen


def at_of(event: RecordedEvent, name: str = "at") -> datetime:
    moment = datetime.fromisoformat(event.data[name])
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- the schema ---------------------------------------------------------------------------------


@pytest.mark.parametrize("table", READ_TABLES, ids=lambda t: t.name)
def test_migration_creates_what_the_table_definitions_say(engine: Engine, table: Table) -> None:
    inspector = inspect(engine)
    columns = {c["name"]: c for c in inspector.get_columns(table.name)}
    assert set(columns) == {c.name for c in table.columns}
    for column in table.columns:
        assert bool(columns[column.name]["nullable"]) == column.nullable, column.name
    pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
    assert pk == [c.name for c in table.primary_key.columns]
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(table.name)}
    assert {index.name: [c.name for c in index.columns] for index in table.indexes} == {
        index.name: indexes.get(str(index.name)) for index in table.indexes
    }


def test_orders_carry_the_guides_indexes(mysql_engine: Engine) -> None:
    reflected = [i["column_names"] for i in inspect(mysql_engine).get_indexes("orders")]
    for prefix in (["restaurant_id", "status"], ["restaurant_id", "created_at"], ["table_id"]):
        assert any(columns[: len(prefix)] == prefix for columns in reflected), prefix


def test_both_projections_are_in_the_catalog() -> None:
    built = build_projections(lambda _restaurant: "UTC")
    assert {"orders", "order_history"} <= set(built)


# -- the orders row -----------------------------------------------------------------------------


def test_a_full_lifecycle_fills_every_field_from_the_events(kitchen: Kitchen) -> None:
    order_id = kitchen.place(2, 1, customer_name="Zoë O'Neil", notes="oat milk")
    placed = kitchen.order(order_id)
    assert (placed.status, placed.version, placed.total_cents) == ("pending", 1, 2 * 350 + 420)
    assert placed.started_at is placed.ready_at is placed.paid_at is placed.cancelled_at is None
    assert placed.updated_at == placed.created_at

    added = kitchen.container.orders.add_item(
        kitchen.ctx(),
        order_id,
        OrderItemCreate(menu_item_id=kitchen.items[2], quantity=3, notes="to go"),
    )
    first_line = placed.lines[0].line_id
    kitchen.container.orders.remove_item(kitchen.ctx(), order_id, first_line)
    kitchen.drive(order_id, "start", "ready", "serve", "pay")

    view = kitchen.order(order_id)
    events = kitchen.events()[-7:]
    assert [e.type for e in events] == [
        "OrderPlaced",
        "OrderItemAdded",
        "OrderItemRemoved",
        "OrderPreparationStarted",
        "OrderReady",
        "OrderServed",
        "OrderPaid",
    ]
    placed_event, _added, _removed, started, ready, served, paid = events
    assert view.model_dump() == {
        "id": order_id,
        "status": "paid",
        "table_id": None,
        "customer_name": "Zoë O'Neil",
        "notes": "oat milk",
        "lines": [
            {
                "line_id": placed.lines[1].line_id,
                "menu_item_id": kitchen.items[1],
                "name": "Item 1",
                "unit_price_cents": 420,
                "quantity": 1,
                "notes": "",
                "line_total_cents": 420,
            },
            {
                "line_id": added.body["line_id"],
                "menu_item_id": kitchen.items[2],
                "name": "Item 2",
                "unit_price_cents": 275,
                "quantity": 3,
                "notes": "to go",
                "line_total_cents": 825,
            },
        ],
        "total_cents": 1245,
        "tip_cents": 50,
        "paid_cents": 1245,
        "payment_method": "card",
        "created_at": at_of(placed_event, "placed_at"),
        "updated_at": at_of(paid),
        "started_at": at_of(started),
        "ready_at": at_of(ready),
        "served_at": at_of(served),
        "paid_at": at_of(paid),
        "cancelled_at": None,
        "cancel_reason": None,
        "version": 7,
    }
    assert len({view.created_at, view.started_at, view.ready_at, view.paid_at}) == 4
    assert all(moment.tzinfo is not None for moment in (view.created_at, view.updated_at))
    row = kitchen.rows(orders.orders)
    assert [(r["order_id"], r["last_seq"]) for r in row] == [(order_id, paid.seq)]


def test_a_line_change_stamps_updated_at_with_the_recorded_time(kitchen: Kitchen) -> None:
    order_id = kitchen.place(1)
    kitchen.container.orders.add_item(
        kitchen.ctx(), order_id, OrderItemCreate(menu_item_id=kitchen.items[1], quantity=1)
    )
    added = kitchen.events()[-1]
    view = kitchen.order(order_id)
    assert view.updated_at == added.recorded_at
    assert view.updated_at > view.created_at


def test_a_cancelled_order_keeps_its_reason_and_time(kitchen: Kitchen) -> None:
    order_id = kitchen.place(1)
    kitchen.drive(order_id, "start", "cancel")
    cancelled = kitchen.events()[-1]
    view = kitchen.order(order_id)
    assert (view.status, view.cancel_reason, view.version) == ("cancelled", "no show", 3)
    assert view.cancelled_at == view.updated_at == at_of(cancelled)
    assert view.started_at is not None
    assert view.ready_at is view.served_at is view.paid_at is None
    assert view.payment_method is None


# -- counters -----------------------------------------------------------------------------------


def test_counters_equal_count_star_per_status(kitchen: Kitchen) -> None:
    lifecycles = {
        "pending": [],
        "preparing": ["start"],
        "ready": ["start", "ready"],
        "served": ["start", "ready", "serve"],
        "paid": ["start", "ready", "serve", "pay"],
        "cancelled": ["cancel"],
    }
    for index, steps in enumerate(lifecycles.values()):
        for _ in range(index % 3 + 1):
            kitchen.drive(kitchen.place(1), *steps)
    kitchen.drive(kitchen.place(1), "start", "ready", "cancel")
    kitchen.project()

    with kitchen.container.engine.connect() as conn:
        counted: dict[str, int] = dict(
            conn.execute(
                select(orders.orders.c.status, func.count())
                .where(orders.orders.c.restaurant_id == kitchen.restaurant_id)
                .group_by(orders.orders.c.status)
            ).all()
        )
    counters = {row["status"]: row["count"] for row in kitchen.rows(orders.order_counters)}
    assert {status: n for status, n in counters.items() if n} == counted
    assert counted == {
        "pending": 1,
        "preparing": 2,
        "ready": 3,
        "served": 1,
        "paid": 2,
        "cancelled": 4,
    }
    assert all(n >= 0 for n in counters.values())

    page = queries.list_orders(
        kitchen.container.engine,
        kitchen.restaurant_id,
        queries.OrderFilters(statuses=("ready", "cancelled")),
        PageRequest(limit=2),
    )
    assert page.total == 7
    everything = queries.list_orders(
        kitchen.container.engine, kitchen.restaurant_id, queries.OrderFilters(), PageRequest()
    )
    assert everything.total == 13


# -- exactly once, in seq order, whatever the bus does ------------------------------------------


def snapshot(kitchen: Kitchen) -> list[list[dict[str, Any]]]:
    return [kitchen.rows(table) for table in READ_TABLES]


def test_duplicate_delivery_changes_nothing(kitchen: Kitchen) -> None:
    first = kitchen.place(1, 2)
    kitchen.drive(first, "start", "ready")
    kitchen.drive(kitchen.place(1), "cancel")
    events = kitchen.events()
    projectors = [kitchen.projector(orders.build()), kitchen.projector(order_history.build())]

    assert [p.apply_batch(events) for p in projectors] == [len(events)] * 2
    once = snapshot(kitchen)
    assert [p.apply_batch(events) for p in projectors] == [0, 0]
    assert [p.apply_batch([*events[2:], *events[:3]]) for p in projectors] == [0, 0]
    assert snapshot(kitchen) == once
    assert [len(rows) for rows in once] == [2, 4, 5]


def test_a_reordered_batch_with_holes_heals_from_the_store(kitchen: Kitchen) -> None:
    order_id = kitchen.place(1)
    kitchen.drive(order_id, "start", "ready", "serve")
    events = kitchen.events()  # seq 1..k: the menu first, then the order
    head = events[-1].seq
    projector = kitchen.projector(orders.build())
    history = kitchen.projector(order_history.build())

    late = [e for e in events if e.seq in {3, head}]
    assert projector.apply_batch(list(reversed(late))) == head  # 1-2 and 4.. fetched
    assert history.apply_batch([events[2]]) == 3
    assert history.apply_batch(list(reversed(events))) == head - 3

    with kitchen.container.engine.connect() as conn:
        assert checkpoint_of(conn, "orders", kitchen.restaurant_id) == head
        assert checkpoint_of(conn, "order_history", kitchen.restaurant_id) == head
    view = kitchen.order(order_id)
    assert (view.status, view.version) == ("served", 4)
    assert [r["version"] for r in kitchen.rows(order_history.order_history)] == [1, 2, 3, 4]
    assert kitchen.rows(orders.order_counters) == [
        {"restaurant_id": kitchen.restaurant_id, "status": status, "count": count}
        for status, count in [("pending", 0), ("preparing", 0), ("ready", 0), ("served", 1)]
    ]


def test_a_handler_refuses_an_event_whose_order_it_never_saw(mysql_engine: Engine) -> None:
    stray = RecordedEvent(
        id=1,
        event_id=str(uuid.uuid4()),
        restaurant_id=str(uuid.uuid4()),
        seq=1,
        stream_type="order",
        stream_id=str(uuid.uuid4()),
        version=2,
        type="OrderReady",
        schema_version=1,
        data={"at": "2026-03-02T08:00:00+00:00"},
        metadata={},
        recorded_at=datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
    )
    with mysql_engine.connect() as conn, conn.begin() as transaction:
        with pytest.raises(LookupError, match="no row"):
            orders.build().apply(RowBuffer(lambda: conn), stray)
        transaction.rollback()


# -- history ------------------------------------------------------------------------------------


def test_history_records_every_event_with_actor_and_request_id(kitchen: Kitchen) -> None:
    orders_ = kitchen.container.orders
    body = OrderCreate(items=[OrderItemCreate(menu_item_id=kitchen.items[0], quantity=1)])
    order_id = orders_.place(kitchen.ctx("api_key:till-1", "req-place"), body).body["id"]
    orders_.start(kitchen.ctx("user:barista", "req-start"), order_id)
    orders_.cancel(kitchen.ctx("user:boss"), order_id, CancellationCreate(reason="spilled"))
    kitchen.project()
    stored = kitchen.container.store.load_stream(kitchen.restaurant_id, order_id)

    page = queries.order_history(
        kitchen.container.engine, kitchen.restaurant_id, order_id, PageRequest()
    )
    assert page is not None
    assert page.total == 3
    assert [e.model_dump() for e in page.items] == [
        {
            "version": event.version,
            "position": event.seq,
            "type": event.type,
            "data": event.data,
            "actor": actor,
            "request_id": request_id,
            "recorded_at": event.recorded_at,
        }
        for event, actor, request_id in zip(
            stored,
            ["api_key:till-1", "user:barista", "user:boss"],
            ["req-place", "req-start", None],
            strict=True,
        )
    ]
    cancelled = registry.decode("OrderCancelled", 1, page.items[2].data)
    assert isinstance(cancelled, OrderCancelled)
    assert cancelled.reason == "spilled"
    other = queries.order_history(
        kitchen.container.engine, str(uuid.uuid4()), order_id, PageRequest()
    )
    assert other is None


# -- the list query stays on an index -----------------------------------------------------------


def explain(conn: Connection, statement: Any) -> list[dict[str, Any]]:
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return [dict(row._mapping) for row in conn.execute(text(f"EXPLAIN {compiled}"))]


@pytest.mark.parametrize(
    "filters",
    [
        queries.OrderFilters(),
        queries.OrderFilters(sort="created_at"),
        queries.OrderFilters(statuses=("pending",)),
        queries.OrderFilters(statuses=("ready", "served"), sort="created_at"),
        queries.OrderFilters(created_from=datetime(2026, 3, 1, 1, tzinfo=UTC)),
    ],
    ids=["all-newest", "all-oldest", "one-status", "two-statuses", "since"],
)
@pytest.mark.parametrize("cursor", [False, True], ids=["offset", "keyset"])
def test_the_list_query_uses_an_index(
    mysql_engine: Engine, filters: queries.OrderFilters, cursor: bool
) -> None:
    restaurant_id = str(uuid.uuid4())
    base = datetime(2026, 3, 1, tzinfo=UTC)
    statuses = queries.ORDER_STATUSES
    rows: list[dict[str, Any]] = [
        {
            "order_id": str(uuid.uuid4()),
            "restaurant_id": rid,
            "status": statuses[n % len(statuses)],
            "table_id": None,
            "customer_name": None,
            "notes": "",
            "lines": [],
            "total_cents": 0,
            "tip_cents": 0,
            "paid_cents": 0,
            "created_at": (base + timedelta(minutes=n)).replace(tzinfo=None),
            "updated_at": (base + timedelta(minutes=n)).replace(tzinfo=None),
            "version": 1,
            "last_seq": n + 1,
        }
        for rid in [restaurant_id, *(str(uuid.uuid4()) for _ in range(9))]
        for n in range(300)
    ]
    key = ["-created_at", (base + timedelta(minutes=150)).isoformat(), str(uuid.uuid4())]
    if filters.sort == "created_at":
        key[0] = "created_at"
    page = PageRequest(limit=20, cursor=key if cursor else None)
    with mysql_engine.connect() as conn, conn.begin() as transaction:
        conn.execute(orders.orders.insert(), rows)  # rolled back: never seen by anyone else
        query = queries.list_query(restaurant_id, filters, page)
        plan = explain(conn, query)
        found = conn.execute(query).all()
        transaction.rollback()
    if cursor:  # the page's ids on the index alone, then those rows by primary key
        [ids] = [step for step in plan if step["select_type"] == "DERIVED"]
        [rows_of] = [step for step in plan if step["table"] == "orders" and step is not ids]
        assert rows_of["type"] == "eq_ref", plan
        assert rows_of["key"] == "PRIMARY", plan
    else:
        assert len(plan) == 1, plan
        [ids] = plan
    assert ids["key"] is not None, plan
    assert ids["key"].startswith("ix_orders_"), plan
    assert ids["type"] != "ALL", plan
    if len(filters.statuses) < 2:  # several statuses: the planner may sort their ids
        assert "filesort" not in (ids["Extra"] or ""), plan  # rows come in index order
    assert len(found) == 21
