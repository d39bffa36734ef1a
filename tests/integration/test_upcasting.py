"""A stored v1 event, read after its class moved to v2, comes back as v2 on every read path."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from sqlalchemy import Connection, Engine, func, select

from coffeeshop.events.envelope import RecordedEvent, StreamRef
from coffeeshop.events.errors import UnknownEventType
from coffeeshop.events.outbox import claim_batch
from coffeeshop.events.registry import DomainEvent, EventRegistry
from coffeeshop.events.schema import events, outbox
from coffeeshop.events.store import EventStore

EVENT_TYPE = "test_upcasting.PriceChanged"


class PriceChangedV1(DomainEvent):
    """The event as first shipped: a decimal string, the currency implied."""

    event_type: ClassVar[str] = EVENT_TYPE
    item: str
    price: str


class PriceChangedV2(DomainEvent):
    """The same event after the change: integer cents and an explicit currency."""

    event_type: ClassVar[str] = EVENT_TYPE
    schema_version: ClassVar[int] = 2
    item: str
    price_cents: int
    currency: str


def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "item": data["item"],
        "price_cents": int(Decimal(data["price"]) * 100),
        "currency": "EUR",
    }


def old_registry() -> EventRegistry:
    registry = EventRegistry()
    registry.register(PriceChangedV1)
    return registry


def new_registry(with_upcaster: bool = True) -> EventRegistry:
    registry = EventRegistry()
    registry.register(PriceChangedV2)
    if with_upcaster:
        registry.upcaster(EVENT_TYPE, 1)(v1_to_v2)
    return registry


V2_SHAPES = [
    {"item": "latte", "price_cents": 350, "currency": "EUR"},
    {"item": "scone", "price_cents": 275, "currency": "EUR"},
    {"item": "latte", "price_cents": 390, "currency": "EUR"},
]


@pytest.fixture
def stored(engine: Engine) -> StreamRef:
    """A menu stream holding three v1 events, written by the code as it used to be."""
    ref = StreamRef(str(uuid.uuid4()), "menu", str(uuid.uuid4()))
    store = EventStore(engine, old_registry())
    store.append(ref, 0, [PriceChangedV1(item="latte", price="3.50")])
    store.append(
        ref,
        1,
        [PriceChangedV1(item="scone", price="2.75"), PriceChangedV1(item="latte", price="3.90")],
    )
    return ref


def claim_all(conn: Connection, store: EventStore, restaurant_id: str) -> list[RecordedEvent]:
    """Claim every outbox row (the caller rolls back, so nothing is consumed) and keep ours."""
    pending = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
    entries = claim_batch(conn, store, limit=pending + 1)
    return [e.event for e in entries if e.event.restaurant_id == restaurant_id]


def assert_v2(found: list[RecordedEvent], registry: EventRegistry) -> None:
    assert [e.schema_version for e in found] == [2, 2, 2]
    assert [e.data for e in found] == V2_SHAPES
    decoded = [e.decode(registry) for e in found]
    assert all(type(event) is PriceChangedV2 for event in decoded)
    assert decoded == [PriceChangedV2(**shape) for shape in V2_SHAPES]


def test_the_old_code_reads_what_it_wrote(engine: Engine, stored: StreamRef) -> None:
    registry = old_registry()
    found = EventStore(engine, registry).load_stream(stored.restaurant_id, stored.stream_id)
    assert [e.schema_version for e in found] == [1, 1, 1]
    assert found[0].decode(registry) == PriceChangedV1(item="latte", price="3.50")


def test_every_read_path_returns_the_v2_shape(engine: Engine, stored: StreamRef) -> None:
    registry = new_registry()
    store = EventStore(engine, registry)

    assert_v2(store.load_stream(stored.restaurant_id, stored.stream_id), registry)
    assert_v2(store.read_restaurant(stored.restaurant_id), registry)
    assert_v2(store.read_restaurant(stored.restaurant_id, after_seq=0, up_to_seq=3), registry)

    first_id = store.load_stream(stored.restaurant_id, stored.stream_id)[0].id
    batch = store.read_all(after_id=first_id - 1, limit=100)
    assert_v2([e for e in batch if e.restaurant_id == stored.restaurant_id], registry)

    with engine.connect() as conn, conn.begin() as transaction:
        claimed = claim_all(conn, store, stored.restaurant_id)
        transaction.rollback()
    assert_v2(sorted(claimed, key=lambda e: e.seq), registry)


def test_upcasting_on_read_leaves_the_stored_rows_alone(engine: Engine, stored: StreamRef) -> None:
    EventStore(engine, new_registry()).load_stream(stored.restaurant_id, stored.stream_id)

    with engine.connect() as conn:
        rows = conn.execute(
            select(events.c.schema_version, events.c.data)
            .where(events.c.stream_id == stored.stream_id)
            .order_by(events.c.version)
        ).all()
    assert [row.schema_version for row in rows] == [1, 1, 1]
    assert rows[0].data == {"item": "latte", "price": "3.50"}


def test_new_events_are_stored_as_v2_next_to_the_old_ones(
    engine: Engine, stored: StreamRef
) -> None:
    registry = new_registry()
    store = EventStore(engine, registry)
    store.append(stored, 3, [PriceChangedV2(item="tea", price_cents=250, currency="GBP")])

    found = store.load_stream(stored.restaurant_id, stored.stream_id)

    assert [e.schema_version for e in found] == [2, 2, 2, 2]
    assert found[-1].data == {"item": "tea", "price_cents": 250, "currency": "GBP"}
    assert [e.decode(registry) for e in found][-1] == PriceChangedV2(
        item="tea", price_cents=250, currency="GBP"
    )
    with engine.connect() as conn:
        versions = (
            conn.execute(
                select(events.c.schema_version)
                .where(events.c.stream_id == stored.stream_id)
                .order_by(events.c.version)
            )
            .scalars()
            .all()
        )
    assert versions == [1, 1, 1, 2]


def test_a_missing_upcaster_fails_loudly_on_every_read_path(
    engine: Engine, stored: StreamRef
) -> None:
    store = EventStore(engine, new_registry(with_upcaster=False))

    with pytest.raises(UnknownEventType, match="no upcaster"):
        store.load_stream(stored.restaurant_id, stored.stream_id)
    with pytest.raises(UnknownEventType):
        store.read_restaurant(stored.restaurant_id)
    first_id = EventStore(engine, old_registry()).read_restaurant(stored.restaurant_id)[0].id
    with pytest.raises(UnknownEventType):
        store.read_all(after_id=first_id - 1, limit=1)
    with engine.connect() as conn, conn.begin() as transaction:
        with pytest.raises(UnknownEventType):
            claim_all(conn, store, stored.restaurant_id)
        transaction.rollback()
