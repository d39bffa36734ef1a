"""A projector killed mid-batch and a flushed Redis: after a restart the read tables equal
a clean rebuild from the event store."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import Engine, MetaData
from sqlalchemy.exc import OperationalError

from coffeeshop.api.container import build_container
from coffeeshop.api.db import make_engine
from coffeeshop.api.runtime import (
    ProjectorRunner,
    build_projectors,
    run_projectors,
    run_relay,
    start_runners,
)
from coffeeshop.commands.handling import CommandContext
from coffeeshop.commands.models import (
    CategoryCreate,
    MenuItemCreate,
    OrderCreate,
    OrderItemCreate,
    PaymentCreate,
)
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.migrations.runner import upgrade
from coffeeshop.projections import tracking
from coffeeshop.projections.base import Projection
from coffeeshop.projections.projector import ProjectionFailed, Projector
from coffeeshop.projections.rows import Rows
from coffeeshop.projections.tracking import checkpoint_table
from coffeeshop.queries.menu import ItemFilters, list_items
from coffeeshop.queries.orders import OrderFilters, get_order, list_orders
from coffeeshop.queries.pagination import PageRequest
from coffeeshop.queries.reports import daily_report
from tests.conftest import REDIS_URL, make_settings
from tests.integration.rebuild_helpers import Crash, crashing

pytestmark = pytest.mark.usefixtures("mysql_engine")


def _shop(container, restaurant_id: str, orders: int) -> list[str]:  # type: ignore[no-untyped-def]
    ctx = CommandContext(restaurant_id, actor="user:test", request_id="fault-test")
    category = container.menu.create_category(ctx, CategoryCreate(name="Coffee")).body["id"]
    item = container.menu.add_item(
        ctx, MenuItemCreate(name="Latte", category_id=category, price_cents=400)
    ).body["id"]
    ids = []
    for n in range(orders):
        body = OrderCreate(items=[OrderItemCreate(menu_item_id=item, quantity=1 + n % 3)])
        order_id = container.orders.place(ctx, body).body["id"]
        if n % 2:
            for step in (
                container.orders.start,
                container.orders.mark_ready,
                container.orders.serve,
            ):
                step(ctx, order_id)
            total = container.orders.total_of(ctx, order_id)
            container.orders.pay(ctx, order_id, PaymentCreate(method="cash", amount_cents=total))
        ids.append(order_id)
    return ids


def _snapshot(engine: Engine, restaurant_id: str, order_ids: list[str]) -> dict[str, object]:
    everything = PageRequest(limit=50)
    return {
        "orders": [get_order(engine, restaurant_id, order_id) for order_id in order_ids],
        "paid": list_orders(
            engine, restaurant_id, OrderFilters(statuses=("paid",)), everything
        ).model_dump()["total"],
        "items": list_items(engine, restaurant_id, ItemFilters(), everything).model_dump()["items"],
        "report": daily_report(engine, restaurant_id, datetime.now(UTC).date()).model_dump(),
    }


def test_a_killed_projector_and_a_flushed_redis_converge_to_a_clean_rebuild(
    tmp_path: Path,
) -> None:
    settings = make_settings(bus_partitions=2)
    container = build_container(settings)
    redis = Redis.from_url(REDIS_URL)
    redis.flushdb()
    restaurant = str(uuid.uuid4())
    order_ids = _shop(container, restaurant, orders=12)

    # The projector dies half way through a batch: its transaction never commits.
    for projector in build_projectors(container):
        doomed = Projector(
            crashing(projector.projection, after=1), container.engine, container.store
        )
        with pytest.raises(Crash):
            doomed.catch_up_restaurant(restaurant, container.store.head(restaurant))
    with container.engine.connect() as conn:
        assert tracking.checkpoint_of(conn, "orders", restaurant) == 0

    # Redis loses everything (streams and consumer groups) while the restart happens.
    # (FLUSHDB on the test database: FLUSHALL would also wipe other users of this server.)
    redis.flushdb()
    order_ids += _shop(container, restaurant, orders=6)

    async def restart() -> None:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(run_relay(container, stop)),
            asyncio.create_task(run_projectors(container, [], stop, catch_up_interval_s=0.5)),
        ]
        deadline = time.monotonic() + 30
        head = container.store.head(restaurant)
        while not _all_at(container.engine, restaurant, head):
            assert time.monotonic() < deadline, "projections did not converge"
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)

    asyncio.run(restart())

    # A clean rebuild: the same projections over the same store, into an empty database.
    rebuilt = make_engine(settings, f"sqlite:///{tmp_path / 'rebuilt.db'}")
    upgrade(rebuilt)
    for projector in build_projectors(container):
        Projector(projector.projection, rebuilt, container.store).catch_up_restaurant(
            restaurant, container.store.head(restaurant)
        )
    live, clean = (
        _snapshot(container.engine, restaurant, order_ids),
        _snapshot(rebuilt, restaurant, order_ids),
    )
    assert live == clean
    assert live["paid"] == 9
    container.close()
    rebuilt.dispose()


def _all_at(engine: Engine, restaurant: str, head: int) -> bool:
    names = ("orders", "order_history", "menu", "daily_sales")
    with engine.connect() as conn:
        return all(tracking.checkpoint_of(conn, name, restaurant) == head for name in names)


def test_failure_is_recorded_and_not_skipped() -> None:
    container = build_container(make_settings())
    restaurant = str(uuid.uuid4())
    _shop(container, restaurant, orders=2)

    def explode(rows: Rows, event: RecordedEvent) -> None:
        raise RuntimeError("bad handler")

    orders_projection = build_projectors(container, ["orders"])[0].projection
    probe_checkpoints = checkpoint_table("orders_broken_probe", MetaData())
    probe_checkpoints.create(container.engine, checkfirst=True)
    broken = Projection(
        "orders_broken_probe",
        orders_projection.tables,
        {"OrderPlaced": explode},
        checkpoint=probe_checkpoints,
    )
    projector = Projector(broken, container.engine, container.store)
    with pytest.raises(ProjectionFailed) as failure:
        projector.catch_up_restaurant(restaurant, container.store.head(restaurant))
    poison = failure.value.event
    assert poison is not None
    assert poison.type == "OrderPlaced"
    with container.engine.connect() as conn:
        assert tracking.states(conn)["orders_broken_probe"][0] == "failed"
        # It stops exactly before the failing event: what came before is applied (the
        # failed transaction's work is redone), the failing event and the rest are not.
        assert tracking.checkpoint_of(conn, probe_checkpoints, restaurant) == poison.seq - 1
    container.close()


def test_a_transient_database_error_at_start_up_does_not_kill_the_projector(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A replay's RENAME can make a starting projector's catch-up the deadlock victim: the
    projector must come up anyway and leave the work to the periodic catch-up."""
    container = build_container(make_settings())
    projector = build_projectors(container, ["orders"])[0]
    calls = []

    def deadlocked() -> dict[str, int]:
        calls.append(1)
        raise OperationalError("SELECT ...", {}, Exception("1213 Deadlock found"))

    projector.positions = deadlocked  # type: ignore[method-assign]
    runner = ProjectorRunner(projector)
    try:
        asyncio.run(start_runners([runner], container.store))
    finally:
        container.close()
    assert calls == [1]
    assert not runner.failed
    assert "start-up catch-up of orders failed; retrying later" in caplog.text
