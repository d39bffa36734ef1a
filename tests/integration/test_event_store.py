"""The event store on both backends: append, load, every read path, heads and idempotency.

Every test works in its own fresh restaurants (uuid4): the database is shared by the session.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
from sqlalchemy import Engine, select

from coffeeshop.events.envelope import (
    AppendResult,
    EventMetadata,
    StoredResponse,
    StreamRef,
    StreamWrite,
)
from coffeeshop.events.errors import ConcurrencyError, IdempotencyKeyReused
from coffeeshop.events.idempotency import IdempotencyClaim
from coffeeshop.events.registry import DomainEvent, EventRegistry
from coffeeshop.events.schema import idempotency_keys, outbox
from coffeeshop.events.store import EventStore as Store

registry = EventRegistry()


@registry.register
class ItemAdded(DomainEvent):
    event_type: ClassVar[str] = "test_store.ItemAdded"
    name: str
    quantity: int


@registry.register
class ItemRemoved(DomainEvent):
    event_type: ClassVar[str] = "test_store.ItemRemoved"
    name: str


class FakeClock:
    """An injectable clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def new_id() -> str:
    return str(uuid.uuid4())


def order(restaurant_id: str) -> StreamRef:
    return StreamRef(restaurant_id=restaurant_id, stream_type="order", stream_id=new_id())


def added(name: str = "latte", quantity: int = 1) -> ItemAdded:
    return ItemAdded(name=name, quantity=quantity)


class Responder:
    """An IdempotencyClaim ``respond`` callback that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, result: AppendResult) -> StoredResponse:
        self.calls += 1
        body = {
            "stream_id": result.stream_id,
            "version": result.version,
            "position": result.position,
        }
        return StoredResponse(status_code=201, body=body)


def claim(
    key: str, request_hash: str = "hash-a", respond: Responder | None = None
) -> IdempotencyClaim:
    return IdempotencyClaim(key, request_hash, respond or Responder())


def key_row(engine: Engine, restaurant_id: str, key: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.restaurant_id == restaurant_id,
                idempotency_keys.c.idempotency_key == key,
            )
        ).first()


@pytest.fixture
def store(engine: Engine) -> Store:
    return Store(engine, registry)


@pytest.fixture
def restaurant() -> str:
    return new_id()


# -- append and load ---------------------------------------------------------------------------


def test_append_then_load_round_trips_everything(engine: Engine, restaurant: str) -> None:
    moment = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    store = Store(engine, registry, clock=FakeClock(moment))
    ref = order(restaurant)
    meta = EventMetadata(
        correlation_id="corr-1",
        causation_id="cause-1",
        request_id="req-1",
        actor="user:42",
        idempotency_key="idem-1",
        extra={"source": "pos", "terminal": 3},
    )
    first, second = added("latte", 2), ItemRemoved(name="latte")

    result = store.append(ref, 0, [first, second], metadata=meta)

    assert result == AppendResult(stream_id=ref.stream_id, version=2, position=2)
    loaded = store.load_stream(restaurant, ref.stream_id)
    assert [e.version for e in loaded] == [1, 2]
    assert [e.seq for e in loaded] == [1, 2]
    assert [e.type for e in loaded] == ["test_store.ItemAdded", "test_store.ItemRemoved"]
    assert [e.data for e in loaded] == [{"name": "latte", "quantity": 2}, {"name": "latte"}]
    assert [e.decode(registry) for e in loaded] == [first, second]
    assert len({e.event_id for e in loaded}) == 2
    assert loaded[0].id < loaded[1].id
    for event in loaded:
        uuid.UUID(event.event_id)
        assert event.restaurant_id == restaurant
        assert event.stream_type == "order"
        assert event.stream_id == ref.stream_id
        assert event.schema_version == 1
        assert event.metadata == {
            "correlation_id": "corr-1",
            "causation_id": "cause-1",
            "request_id": "req-1",
            "actor": "user:42",
            "idempotency_key": "idem-1",
            "source": "pos",
            "terminal": 3,
        }
        assert event.recorded_at == moment  # microseconds survive the round trip
        assert event.recorded_at.utcoffset() == timedelta(0)


def test_versions_count_per_stream_and_seq_per_restaurant(store: Store, restaurant: str) -> None:
    one, two = order(restaurant), order(restaurant)

    assert store.append(one, 0, [added()]).position == 1
    result = store.append(two, 0, [added(), added()])
    assert (result.version, result.position) == (2, 3)
    result = store.append(one, 1, [ItemRemoved(name="latte")])
    assert (result.version, result.position) == (2, 4)

    assert [(e.version, e.seq) for e in store.load_stream(restaurant, one.stream_id)] == [
        (1, 1),
        (2, 4),
    ]
    assert [(e.version, e.seq) for e in store.load_stream(restaurant, two.stream_id)] == [
        (1, 2),
        (2, 3),
    ]
    assert [e.version for e in store.load_stream(restaurant, one.stream_id, 1)] == [2]
    assert store.load_stream(restaurant, one.stream_id, 2) == []
    assert store.stream_version(one.stream_id) == 2
    assert store.stream_version(new_id()) == 0


def test_recorded_at_is_aware_utc_whatever_the_clock_zone(engine: Engine, restaurant: str) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2026, 7, 4, 23, 59, 59, 999999, tzinfo=india)
    store = Store(engine, registry, clock=lambda: moment)
    ref = order(restaurant)

    store.append(ref, 0, [added()])

    (event,) = store.load_stream(restaurant, ref.stream_id)
    assert event.recorded_at == moment
    assert event.recorded_at.utcoffset() == timedelta(0)
    assert event.recorded_at.hour == 18  # 23:59 at +05:30 is 18:29 UTC
    assert event.metadata == {}


def test_recorded_at_defaults_to_now(store: Store, restaurant: str) -> None:
    ref = order(restaurant)
    before = datetime.now(UTC)
    store.append(ref, 0, [added()])
    after = datetime.now(UTC)

    (event,) = store.load_stream(restaurant, ref.stream_id)
    assert before <= event.recorded_at <= after


def test_append_needs_at_least_one_event(store: Store, restaurant: str) -> None:
    with pytest.raises(ValueError, match="at least one event"):
        store.append(order(restaurant), 0, [])


def test_each_event_gets_an_outbox_row(engine: Engine, store: Store, restaurant: str) -> None:
    store.append(order(restaurant), 0, [added(), added(), added()])
    store.append(order(restaurant), 0, [added()])

    with engine.connect() as conn:
        seqs = (
            conn.execute(
                select(outbox.c.seq)
                .where(outbox.c.restaurant_id == restaurant)
                .order_by(outbox.c.seq)
            )
            .scalars()
            .all()
        )
    assert seqs == [1, 2, 3, 4]


# -- optimistic concurrency -------------------------------------------------------------------


@pytest.mark.parametrize("expected", [0, 1, 2, 4, 7])
def test_wrong_expected_version_raises_with_the_current_version(
    store: Store, restaurant: str, expected: int
) -> None:
    ref = order(restaurant)
    store.append(ref, 0, [added(), added()])
    store.append(ref, 2, [added()])

    with pytest.raises(ConcurrencyError) as caught:
        store.append(ref, expected, [added("mocha")])

    assert caught.value.stream_id == ref.stream_id
    assert caught.value.expected_version == expected
    assert caught.value.current_version == 3
    assert [e.data["name"] for e in store.load_stream(restaurant, ref.stream_id)] == ["latte"] * 3
    # The failed append consumed no seq: the next one continues without a hole.
    assert store.head(restaurant) == 3
    assert store.append(ref, 3, [added("mocha")]).position == 4
    assert [e.seq for e in store.read_restaurant(restaurant)] == [1, 2, 3, 4]


def test_expecting_a_version_of_a_stream_that_does_not_exist_fails(
    store: Store, restaurant: str
) -> None:
    ref = order(restaurant)
    with pytest.raises(ConcurrencyError) as caught:
        store.append(ref, 1, [added()])
    assert caught.value.current_version == 0
    assert store.head(restaurant) == 0
    assert store.read_restaurant(restaurant) == []


def test_append_many_is_all_or_nothing(store: Store, restaurant: str) -> None:
    one, two, guard = order(restaurant), order(restaurant), order(restaurant)
    store.append(guard, 0, [added()])  # seq 1

    result = store.append_many(
        [
            StreamWrite(one, 0, (added("a"), added("b"))),
            StreamWrite(two, 0, (added("c"),)),
            StreamWrite(guard, 1, ()),  # checked, not written
        ]
    )
    assert (result.stream_id, result.version, result.position) == (one.stream_id, 2, 4)
    assert [(e.stream_id, e.version, e.seq) for e in store.read_restaurant(restaurant)] == [
        (guard.stream_id, 1, 1),
        (one.stream_id, 1, 2),
        (one.stream_id, 2, 3),
        (two.stream_id, 1, 4),
    ]

    store.append(guard, 1, [added()])  # seq 5: the guard moves on
    with pytest.raises(ConcurrencyError) as caught:
        store.append_many([StreamWrite(one, 2, (added("d"),)), StreamWrite(guard, 1, ())])
    assert (caught.value.stream_id, caught.value.current_version) == (guard.stream_id, 2)
    assert store.stream_version(one.stream_id) == 2
    assert store.head(restaurant) == 5


def test_append_many_refuses_two_restaurants_or_no_events(store: Store, restaurant: str) -> None:
    elsewhere = order(new_id())
    with pytest.raises(ValueError, match="exactly one restaurant"):
        store.append_many(
            [StreamWrite(order(restaurant), 0, (added(),)), StreamWrite(elsewhere, 0, (added(),))]
        )
    with pytest.raises(ValueError, match="exactly one restaurant"):
        store.append_many([StreamWrite(order(restaurant), 0, ())])
    assert store.read_restaurant(restaurant) == []
    assert store.read_restaurant(elsewhere.restaurant_id) == []


# -- tenancy and reads ------------------------------------------------------------------------


def test_another_restaurants_stream_reads_as_empty(store: Store, restaurant: str) -> None:
    other = new_id()
    ref = order(restaurant)
    store.append(ref, 0, [added(), added()])

    assert store.load_stream(other, ref.stream_id) == []
    assert store.read_restaurant(other) == []
    assert len(store.load_stream(restaurant, ref.stream_id)) == 2


def test_load_streams_reads_several_streams_at_once(store: Store, restaurant: str) -> None:
    first, second, elsewhere = order(restaurant), order(restaurant), order(new_id())
    store.append_many(
        [
            StreamWrite(first, 0, (added("a"), added("b"))),
            StreamWrite(second, 0, (added("c"),)),
        ]
    )
    store.append(second, 1, [ItemRemoved(name="c")])
    store.append(elsewhere, 0, [added("x")])
    missing = new_id()

    loaded = store.load_streams(
        restaurant, [second.stream_id, first.stream_id, elsewhere.stream_id, missing]
    )

    assert loaded == {
        first.stream_id: store.load_stream(restaurant, first.stream_id),
        second.stream_id: store.load_stream(restaurant, second.stream_id),
        elsewhere.stream_id: [],
        missing: [],
    }
    assert [e.version for e in loaded[second.stream_id]] == [1, 2]
    assert [e.data["name"] for e in loaded[first.stream_id]] == ["a", "b"]
    assert store.load_streams(restaurant, []) == {}


def test_read_restaurant_after_seq_up_to_seq_and_limit(store: Store, restaurant: str) -> None:
    other = new_id()
    streams = [order(restaurant), order(restaurant)]
    versions = [0, 0]
    for i in range(7):  # interleave another restaurant's appends with ours
        which = i % 2
        store.append(streams[which], versions[which], [added(f"item-{i}")])
        versions[which] += 1
        store.append(order(other), 0, [added(f"other-{i}")])

    def seqs(**kwargs: Any) -> list[int]:
        found = store.read_restaurant(restaurant, **kwargs)
        assert {e.restaurant_id for e in found} <= {restaurant}
        return [e.seq for e in found]

    assert seqs() == [1, 2, 3, 4, 5, 6, 7]
    assert [e.data["name"] for e in store.read_restaurant(restaurant)] == [
        f"item-{i}" for i in range(7)
    ]
    assert seqs(after_seq=3) == [4, 5, 6, 7]
    assert seqs(up_to_seq=5) == [1, 2, 3, 4, 5]
    assert seqs(after_seq=2, up_to_seq=4) == [3, 4]
    assert seqs(after_seq=4, up_to_seq=4) == []
    assert seqs(limit=2) == [1, 2]
    assert seqs(after_seq=5, limit=10) == [6, 7]
    assert seqs(after_seq=7) == []
    assert [e.seq for e in store.read_restaurant(other)] == [1, 2, 3, 4, 5, 6, 7]


def test_read_all_in_keyset_batches_and_iter_all(store: Store, restaurant: str) -> None:
    other = new_id()
    ours: list[str] = []
    for i in range(11):
        tenant = restaurant if i % 3 else other
        store.append(order(tenant), 0, [added(f"e{i}"), added(f"e{i}b")])
    for tenant in (restaurant, other):
        ours += [e.event_id for e in store.read_restaurant(tenant)]
    mine = set(ours)
    first_id = min(e.id for tenant in (restaurant, other) for e in store.read_restaurant(tenant))

    batches = []
    after = first_id - 1
    while batch := store.read_all(after, limit=4):
        assert len(batch) <= 4
        assert [e.id for e in batch] == sorted(e.id for e in batch)
        assert batch[0].id > after
        batches.append(batch)
        after = batch[-1].id
    seen = [e for batch in batches for e in batch]
    assert len({e.id for e in seen}) == len(seen)  # batches never overlap
    assert [e.event_id for e in seen if e.event_id in mine] == [
        e.event_id for e in sorted(seen, key=lambda e: e.id) if e.event_id in mine
    ]
    assert {e.event_id for e in seen} >= mine
    assert store.read_all(after) == []

    everything = list(store.iter_all(batch_size=5))
    ids = [e.id for e in everything]
    assert ids == sorted(set(ids))  # strictly increasing: no duplicate, no reorder
    assert [e.event_id for e in everything if e.event_id in mine] == [
        e.event_id for e in seen if e.event_id in mine
    ]
    # Within one restaurant, id order is seq order (appends to a restaurant are serialised).
    ours_in_order = [e for e in everything if e.restaurant_id == restaurant]
    assert [e.seq for e in ours_in_order] == list(range(1, len(ours_in_order) + 1))


def test_heads_and_head(store: Store, engine: Engine, restaurant: str) -> None:
    other = new_id()
    assert store.head(restaurant) == 0
    assert restaurant not in store.heads()

    store.append(order(restaurant), 0, [added(), added()])
    store.append(order(restaurant), 0, [added()])
    store.append(order(other), 0, [added()])

    assert store.head(restaurant) == 3
    assert store.head(other) == 1
    heads = store.heads()
    assert heads[restaurant] == 3
    assert heads[other] == 1


def test_ensure_restaurant_is_idempotent(store: Store, engine: Engine, restaurant: str) -> None:
    with engine.begin() as conn:
        store.ensure_restaurant(conn, restaurant)
        store.ensure_restaurant(conn, restaurant)
    with engine.begin() as conn:
        store.ensure_restaurant(conn, restaurant)

    assert store.heads()[restaurant] == 0
    assert store.append(order(restaurant), 0, [added()]).position == 1
    with engine.begin() as conn:
        store.ensure_restaurant(conn, restaurant)  # never resets the sequence
    assert store.head(restaurant) == 1


# -- idempotency ------------------------------------------------------------------------------


def test_same_key_and_hash_replays_the_recorded_response(
    engine: Engine, store: Store, restaurant: str
) -> None:
    ref = order(restaurant)
    responder = Responder()

    first = store.append(ref, 0, [added(), added()], idempotency=claim("k1", respond=responder))

    body = {"stream_id": ref.stream_id, "version": 2, "position": 2}
    assert first == AppendResult(
        stream_id=ref.stream_id,
        version=2,
        position=2,
        response=StoredResponse(201, body),
        replayed=False,
    )
    assert responder.calls == 1

    # A retry of the same request (same expected version) and a retry that re-decided
    # against another new stream both get the recorded response and append nothing.
    other_stream = order(restaurant)
    for target, expected in ((ref, 0), (ref, 2), (other_stream, 0)):
        again = store.append(target, expected, [added()], idempotency=claim("k1"))
        assert again == AppendResult(
            stream_id=ref.stream_id,
            version=2,
            position=2,
            response=StoredResponse(201, body),
            replayed=True,
        )
    assert store.idempotent_response(restaurant, "k1", "hash-a") == again
    assert len(store.load_stream(restaurant, ref.stream_id)) == 2
    assert store.load_stream(restaurant, other_stream.stream_id) == []
    assert store.head(restaurant) == 2
    assert key_row(engine, restaurant, "k1").status_code == 201


def test_keys_belong_to_one_restaurant(store: Store, restaurant: str) -> None:
    other = new_id()
    store.append(order(restaurant), 0, [added()], idempotency=claim("shared"))

    result = store.append(order(other), 0, [added()], idempotency=claim("shared", "hash-b"))

    assert not result.replayed
    assert store.head(other) == 1
    assert store.idempotent_response(other, "unknown", "hash-a") is None


def test_same_key_with_another_request_hash_is_refused(store: Store, restaurant: str) -> None:
    ref = order(restaurant)
    store.append(ref, 0, [added()], idempotency=claim("k2", "hash-a"))

    with pytest.raises(IdempotencyKeyReused) as caught:
        store.append(ref, 1, [added()], idempotency=claim("k2", "hash-b"))
    assert caught.value.key == "k2"
    with pytest.raises(IdempotencyKeyReused):
        store.append(order(restaurant), 0, [added()], idempotency=claim("k2", "hash-b"))
    with pytest.raises(IdempotencyKeyReused):
        store.idempotent_response(restaurant, "k2", "hash-b")

    assert store.head(restaurant) == 1
    assert store.stream_version(ref.stream_id) == 1


def test_an_expired_key_is_forgotten(engine: Engine, restaurant: str) -> None:
    clock = FakeClock(datetime(2011, 5, 5, 8, 0, tzinfo=UTC))
    store = Store(engine, registry, clock=clock)
    ref = order(restaurant)
    store.append(ref, 0, [added()], idempotency=claim("k3"))

    clock.advance(hours=23, minutes=59)
    assert store.idempotent_response(restaurant, "k3", "hash-a") is not None
    assert store.append(ref, 0, [added()], idempotency=claim("k3")).replayed

    clock.advance(minutes=2)  # 24 h 1 min after it was recorded
    assert store.idempotent_response(restaurant, "k3", "hash-a") is None
    assert key_row(engine, restaurant, "k3") is None
    assert store.stream_version(ref.stream_id) == 1


def test_appending_with_an_expired_key_appends_anew(engine: Engine, restaurant: str) -> None:
    clock = FakeClock(datetime(2012, 6, 6, 8, 0, tzinfo=UTC))
    store = Store(engine, registry, clock=clock)
    ref = order(restaurant)
    store.append(ref, 0, [added()], idempotency=claim("k4", "hash-a"))

    clock.advance(hours=25)
    responder = Responder()
    # Even a different body: the old key no longer exists.
    result = store.append(ref, 1, [added()], idempotency=claim("k4", "hash-b", responder))

    assert not result.replayed
    assert (result.version, result.position) == (2, 2)
    assert responder.calls == 1
    row = key_row(engine, restaurant, "k4")
    assert row.request_hash == "hash-b"
    assert row.response == {"stream_id": ref.stream_id, "version": 2, "position": 2}
    assert store.append(ref, 1, [added()], idempotency=claim("k4", "hash-b")).replayed


def test_an_expired_key_is_taken_over_by_the_append_itself(engine: Engine, restaurant: str) -> None:
    """No look-up first: the append claims the key, finds it expired, and records anew."""
    clock = FakeClock(datetime(2013, 7, 7, 8, 0, tzinfo=UTC))
    store = Store(engine, registry, clock=clock)
    first = order(restaurant)
    store.append(first, 0, [added()], idempotency=claim("k5", "hash-a"))
    clock.advance(hours=24, minutes=1)

    second = order(restaurant)
    result = store.append(second, 0, [added()], idempotency=claim("k5", "hash-b"))

    assert not result.replayed
    assert (result.stream_id, result.version, result.position) == (second.stream_id, 1, 2)
    row = key_row(engine, restaurant, "k5")
    assert (row.request_hash, row.stream_id) == ("hash-b", second.stream_id)
    assert row.created_at.replace(tzinfo=UTC) == clock.now
    assert store.append(order(restaurant), 0, [added()], idempotency=claim("k5", "hash-b")).replayed
    assert store.head(restaurant) == 2


def test_a_taken_key_appends_nothing_and_consumes_no_seq(engine: Engine, restaurant: str) -> None:
    store = Store(engine, registry)
    store.append(order(restaurant), 0, [added()], idempotency=claim("k6"))

    with pytest.raises(IdempotencyKeyReused):
        store.append(order(restaurant), 0, [added()], idempotency=claim("k6", "hash-b"))
    assert store.append(order(restaurant), 0, [added()], idempotency=claim("k6")).replayed

    assert store.head(restaurant) == 1
    assert store.append(order(restaurant), 0, [added()]).position == 2


def test_purge_deletes_only_keys_older_than_a_day(engine: Engine, restaurant: str) -> None:
    # An old epoch of its own, so the purge touches no other test's live keys.
    start = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(days=uuid.uuid4().int % 3000)
    clock = FakeClock(start)
    store = Store(engine, registry, clock=clock)
    recorded_at = {
        "old": 0,
        "a-day-and-a-minute": 2 * 60 - 1,
        "a-minute-short": 2 * 60 + 1,
        "new": 25 * 60,
    }
    for key, minutes in recorded_at.items():
        clock.now = start + timedelta(minutes=minutes)
        store.append(order(restaurant), 0, [added()], idempotency=claim(key))
    clock.now = start + timedelta(hours=26)  # cutoff: start + 2 h

    assert store.purge_idempotency_keys() >= 2

    assert key_row(engine, restaurant, "old") is None
    assert key_row(engine, restaurant, "a-day-and-a-minute") is None
    assert key_row(engine, restaurant, "a-minute-short") is not None
    assert key_row(engine, restaurant, "new") is not None
    assert store.idempotent_response(restaurant, "a-minute-short", "hash-a") is not None
    assert store.head(restaurant) == 4  # purging keys never touches events


def test_a_failing_after_commit_hook_does_not_fail_the_append(engine: Engine) -> None:
    store = Store(engine, registry)
    seen: list[str] = []

    def broken(_restaurant_id: str) -> None:
        raise RuntimeError("event loop closed")

    store.after_commit.extend([broken, seen.append])
    restaurant = str(uuid.uuid4())
    result = store.append(
        StreamRef(restaurant, "category", str(uuid.uuid4())),
        0,
        [ItemAdded(name="latte", quantity=1)],
    )
    assert result.position == 1
    assert seen == [restaurant]
