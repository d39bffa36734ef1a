"""Replay and verify: rebuild == live, resumable, one tenant in place, drift found row by row.

Each test gets a database of its own (MariaDB, and SQLite for the embedded default), since
a rebuild or a comparison covers every restaurant in it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete, insert, select, update

from coffeeshop.api.container import Container, build_container
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.partition import WHOLE, Partition
from coffeeshop.events.store import EventStore
from coffeeshop.projections import shadow, tracking
from coffeeshop.projections.order_history import order_history
from coffeeshop.projections.orders import orders
from coffeeshop.projections.rebuild import Rebuilder
from coffeeshop.projections.verify import Verifier
from coffeeshop.queries.orders import OrderFilters, list_orders
from coffeeshop.queries.pagination import PageRequest
from tests.conftest import make_settings
from tests.integration.rebuild_helpers import (
    Crash,
    crashing,
    leftover_copies,
    project_live,
    projections,
    snapshot,
    trade,
)

BOTH = pytest.mark.parametrize("own_database_url", ["mysql", "sqlite"], indirect=True)


@pytest.fixture
def shop(own_database_url: str) -> Iterator[Container]:
    container = build_container(make_settings(database_url=own_database_url, redis_url=None))
    yield container
    container.close()


# -- replay ------------------------------------------------------------------------------------


@BOTH
def test_replay_of_every_projection_equals_live(shop: Container) -> None:
    for seed in range(3):
        trade(shop, orders=25, seed=seed)
    project_live(shop)
    everything = projections(shop)
    live = snapshot(shop.engine, everything)
    assert all(live[table] for table in ("orders", "daily_sales", "menu_items"))

    results = Rebuilder(shop.engine, shop.store, batch_size=37).replay(everything)

    assert snapshot(shop.engine, everything) == live
    assert {r.projection for r in results} == {p.name for p in everything}
    assert all(r.events == sum(shop.store.heads().values()) for r in results)
    assert leftover_copies(shop.engine) == []
    with shop.engine.connect() as conn:
        assert tracking.rebuilds(conn) == []


@BOTH
def test_replay_catches_up_what_was_appended_while_it_ran(shop: Container) -> None:
    restaurant = trade(shop, orders=20, seed=1)
    project_live(shop)
    appended = []

    def busy_restaurant(done: int, total: int) -> None:
        if 0 < done < total and not appended:  # between two batches
            appended.append(trade(shop, orders=5, seed=2, restaurant_id=restaurant))

    Rebuilder(shop.engine, shop.store, batch_size=25, progress=busy_restaurant).replay(
        projections(shop)
    )
    assert appended
    with shop.engine.connect() as conn:
        assert tracking.checkpoint_of(conn, "orders", restaurant) == shop.store.head(restaurant)
    assert all(
        result.clean for result in Verifier(shop.engine, shop.store).verify(projections(shop))
    )


@BOTH
def test_an_interrupted_replay_leaves_live_alone_and_resumes(shop: Container) -> None:
    trade(shop, orders=30, seed=3)
    project_live(shop)
    everything = projections(shop)
    live = snapshot(shop.engine, everything)
    orders_projection = everything[0]
    assert orders_projection.name == "orders"

    with pytest.raises(Crash):
        Rebuilder(shop.engine, shop.store, batch_size=20).replay([crashing(orders_projection, 60)])

    assert snapshot(shop.engine, everything) == live  # never half-built in place of live
    with shop.engine.connect() as conn:
        (progress,) = tracking.rebuild_parts(conn, "orders", "replay")
    assert progress.position > 0
    assert "orders__next" in leftover_copies(shop.engine)

    (result,) = Rebuilder(shop.engine, shop.store, batch_size=20).replay([orders_projection])

    assert result.resumed_from == progress.applied > 0
    assert snapshot(shop.engine, everything) == live
    assert leftover_copies(shop.engine) == []


@BOTH
def test_restart_discards_an_interrupted_replay(shop: Container) -> None:
    trade(shop, orders=12, seed=4)
    project_live(shop)
    orders_projection = projections(shop)[0]
    with pytest.raises(Crash):
        Rebuilder(shop.engine, shop.store, batch_size=10).replay([crashing(orders_projection, 15)])

    (result,) = Rebuilder(shop.engine, shop.store).replay([orders_projection], restart=True)

    assert result.resumed_from == 0
    assert result.events == sum(shop.store.heads().values())


def _several_restaurants(shop: Container, per_part: int, parts: int) -> list[str]:
    """``per_part`` restaurants in each of ``parts`` partitions, traded and projected."""
    wanted = dict.fromkeys(Partition.all(parts), per_part)
    restaurants = []
    while any(wanted.values()):
        restaurant = str(uuid.uuid4())
        part = next(p for p in wanted if p.holds(restaurant))
        if wanted[part]:
            wanted[part] -= 1
            restaurants.append(restaurant)
    for n, restaurant in enumerate(restaurants):
        trade(shop, orders=6 + n, seed=40 + n, restaurant_id=restaurant)
    project_live(shop)
    return restaurants


@BOTH
def test_a_replay_split_into_parts_equals_live(shop: Container) -> None:
    """What the parallel jobs do, one part after another: each part reads only its own
    restaurants' events into the shared shadows; the swap comes after the last."""
    restaurants = _several_restaurants(shop, per_part=2, parts=3)
    everything = projections(shop)
    live = snapshot(shop.engine, everything)
    parts = Partition.all(3)
    assert {sum(p.holds(r) for p in parts) for r in restaurants} == {1}
    rebuilder = Rebuilder(shop.engine, shop.store, batch_size=25)

    resumed = rebuilder.begin(everything, parts=parts)
    with shop.engine.connect() as conn:
        rows = tracking.rebuild_parts(conn, "orders", "replay")
    assert [(row.part, row.position) for row in rows] == [("1/3", 0), ("2/3", 0), ("3/3", 0)]
    assert sum(row.total for row in rows) == sum(shop.store.heads().values())
    for part in parts:
        rebuilder.fill_part(everything, part)
    results = rebuilder.complete(everything, resumed, started=0.0)

    assert snapshot(shop.engine, everything) == live
    assert all(r.events == sum(shop.store.heads().values()) for r in results)
    assert leftover_copies(shop.engine) == []
    with shop.engine.connect() as conn:
        assert tracking.rebuilds(conn) == []


@BOTH
def test_a_part_killed_half_way_resumes_even_when_split_differently(shop: Container) -> None:
    _several_restaurants(shop, per_part=2, parts=2)
    everything = projections(shop)
    live = snapshot(shop.engine, everything)
    orders_projection = everything[0]
    rebuilder = Rebuilder(shop.engine, shop.store, batch_size=10)
    first, second = Partition.all(2)
    rebuilder.begin([orders_projection], parts=[first, second])
    rebuilder.fill_part([orders_projection], first)
    with pytest.raises(Crash):
        rebuilder.fill_part([crashing(orders_projection, 25)], second)
    with shop.engine.connect() as conn:
        done, half = tracking.rebuild_parts(conn, "orders", "replay")
        combined = tracking.rebuilds(conn)
    assert done.applied == done.total
    assert half.applied < half.total
    assert [(c.part, c.applied) for c in combined] == [("all", done.applied + half.applied)]
    assert snapshot(shop.engine, everything) == live  # nothing swapped

    thirds = Partition.all(3)
    resumed = rebuilder.begin([orders_projection], parts=thirds)
    with shop.engine.connect() as conn:
        rows = tracking.rebuild_parts(conn, "orders", "replay")
    assert {row.position for row in rows} == {min(half.position, done.position)}
    for part in thirds:
        rebuilder.fill_part([orders_projection], part)
    rebuilder.complete([orders_projection], resumed, started=0.0)

    assert snapshot(shop.engine, everything) == live


@BOTH
def test_a_partition_reads_exactly_its_restaurants_events(shop: Container) -> None:
    restaurants = _several_restaurants(shop, per_part=2, parts=4)
    whole = shop.store.read_all(0, 100_000)
    seen: list[int] = []
    for part in Partition.all(4):
        events = shop.store.read_all(0, 100_000, part)
        assert all(part.holds(event.restaurant_id) for event in events)
        assert [e.id for e in events] == sorted(e.id for e in events)
        seen.extend(event.id for event in events)
    assert sorted(seen) == [event.id for event in whole]
    assert {event.restaurant_id for event in whole} == set(restaurants)


def test_a_replay_survives_events_committed_behind_the_keyset(
    shop: Container,
) -> None:
    """An append that commits after the keyset read passed its id shows up as a seq gap."""
    restaurant = trade(shop, orders=10, seed=5)
    project_live(shop)
    everything = projections(shop)
    live = snapshot(shop.engine, everything)
    hidden = {event.id for event in shop.store.read_restaurant(restaurant)[5:9]}

    class LateCommits(EventStore):
        def read_all(
            self, after_id: int = 0, limit: int = 1000, partition: Partition = WHOLE
        ) -> list[RecordedEvent]:
            return [e for e in super().read_all(after_id, limit, partition) if e.id not in hidden]

    store = LateCommits(shop.engine, shop.store._registry)
    Rebuilder(shop.engine, store, batch_size=7).replay(everything)

    assert snapshot(shop.engine, everything) == live


@BOTH
def test_one_restaurant_is_rebuilt_in_place_without_touching_the_others(shop: Container) -> None:
    mine, theirs = trade(shop, orders=8, seed=6), trade(shop, orders=8, seed=7)
    project_live(shop)
    for restaurant in (mine, theirs):
        _corrupt_orders(shop.engine, restaurant)

    rebuilder = Rebuilder(shop.engine, shop.store)
    for projection in projections(shop)[:2]:
        rebuilder.replay_restaurant(projection, mine)

    results = {r.projection: r for r in Verifier(shop.engine, shop.store).verify(projections(shop))}
    assert results["orders"].drift_rows == 1  # theirs, still corrupt
    assert results["order_history"].drift_rows == 1
    assert theirs in results["orders"].summary()
    assert mine not in results["orders"].summary()
    assert results["menu"].clean
    assert results["daily_sales"].clean


def _corrupt_orders(engine: Engine, restaurant: str) -> None:
    with engine.begin() as conn:
        order_id = conn.execute(
            select(orders.c.order_id).where(orders.c.restaurant_id == restaurant).limit(1)
        ).scalar_one()
        conn.execute(
            update(orders)
            .where(orders.c.order_id == order_id)
            .values(total_cents=orders.c.total_cents + 1)
        )
        conn.execute(
            delete(order_history).where(
                order_history.c.order_id == order_id, order_history.c.version == 1
            )
        )


def test_only_one_replay_runs_at_a_time(shop: Container) -> None:
    with shadow.exclusive(shop.engine, "rebuild"), pytest.raises(shadow.Busy):  # noqa: SIM117
        with shadow.exclusive(shop.engine, "rebuild"):
            pass
    with shadow.exclusive(shop.engine, "rebuild"):
        pass  # released


# -- verify ------------------------------------------------------------------------------------


@BOTH
def test_verify_finds_missing_unexpected_and_different_rows(shop: Container) -> None:
    restaurant = trade(shop, orders=10, seed=8)
    project_live(shop)
    with shop.engine.begin() as conn:
        ids = list(
            conn.execute(
                select(orders.c.order_id)
                .where(orders.c.restaurant_id == restaurant)
                .order_by(orders.c.order_id)
            ).scalars()
        )
        # A value no order can have: the corruption must differ whatever the order's status.
        conn.execute(update(orders).where(orders.c.order_id == ids[0]).values(status="lost"))
        extra = dict(
            conn.execute(select(orders).where(orders.c.order_id == ids[1])).mappings().one()
        )
        conn.execute(delete(orders).where(orders.c.order_id == ids[1]))
        conn.execute(insert(orders).values({**extra, "order_id": "f" * 8 + extra["order_id"][8:]}))

    (result,) = Verifier(shop.engine, shop.store).verify(projections(shop)[:1])

    (table,) = [t for t in result.tables if t.table == "orders"]
    assert (table.missing, table.unexpected, table.different) == (1, 1, 1)
    assert result.drift_rows == 3
    summary = result.summary()
    assert f"different order_id={ids[0]}: status: live='lost'" in summary
    assert f"missing order_id={ids[1]}" in summary
    with shop.engine.connect() as conn:
        recorded = tracking.verifications(conn)["orders"]
    assert recorded.drift_rows == 3
    assert leftover_copies(shop.engine) == []


def test_verify_stays_clean_while_live_projectors_keep_applying(shop: Container) -> None:
    """The freeze: verify compares at exactly the positions live has at that moment."""
    restaurant = trade(shop, orders=15, seed=9)
    project_live(shop)
    stop = threading.Event()
    failures: list[BaseException] = []

    def keep_trading() -> None:
        seed = 100
        try:
            while not stop.is_set():
                seed += 1
                trade(shop, orders=2, seed=seed, restaurant_id=restaurant)
                project_live(shop)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    worker = threading.Thread(target=keep_trading)
    worker.start()
    try:
        results = Verifier(shop.engine, shop.store, batch_size=50).verify(projections(shop))
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not failures
    assert [r.summary() for r in results if not r.clean] == []


@BOTH
def test_reads_keep_answering_through_replays(shop: Container) -> None:
    restaurant = trade(shop, orders=30, seed=10)
    project_live(shop)
    stop = threading.Event()
    seen: list[int] = []
    failures: list[BaseException] = []

    def read() -> None:
        while not stop.is_set():
            try:
                page = list_orders(shop.reads, restaurant, OrderFilters(), PageRequest(limit=20))
                seen.append(len(page.items))
            except BaseException as exc:
                failures.append(exc)
                return

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            Rebuilder(shop.engine, shop.store, batch_size=40).replay(projections(shop)[:1])
    finally:
        stop.set()
        reader.join(timeout=30)
    assert failures == []
    assert seen
    assert min(seen) == 20
