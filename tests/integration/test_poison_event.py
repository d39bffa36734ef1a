"""A poison event: the projection whose handler raises stops there, says so everywhere an
operator looks, skips nothing, and resumes once fixed and restarted. The others go on."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import select

from coffeeshop.api.app import create_app
from coffeeshop.api.container import Container, build_container
from coffeeshop.api.report import render_report
from coffeeshop.api.runtime import build_projectors, projection_report, run_projectors, run_relay
from coffeeshop.commands.handling import CommandContext
from coffeeshop.commands.models import CategoryCreate, MenuItemCreate, OrderCreate, OrderItemCreate
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.projections import tracking
from coffeeshop.projections.base import Projection
from coffeeshop.projections.orders import orders
from coffeeshop.projections.projector import Projector
from coffeeshop.projections.rows import Rows
from tests.conftest import REDIS_URL, make_settings

POISON = "Poison Pete"


@pytest.fixture
def shop(own_database_url: str) -> Iterator[Container]:
    Redis.from_url(REDIS_URL).flushdb()
    container = build_container(make_settings(database_url=own_database_url))
    yield container
    container.close()


def poisoned(projection: Projection) -> Projection:
    """The orders projection with a bug: it cannot place an order for POISON."""
    placed = projection.handlers["OrderPlaced"]

    def buggy(rows: Rows, event: RecordedEvent) -> None:
        if event.data.get("customer_name") == POISON:
            raise RuntimeError("cannot project an order for Poison Pete")
        placed(rows, event)

    handlers = {**projection.handlers, "OrderPlaced": buggy}
    return Projection(projection.name, projection.tables, handlers, projection.prefetch)


def test_a_poison_event_stops_only_its_projection_and_resumes_after_the_fix(
    shop: Container,
) -> None:
    restaurant = str(uuid.uuid4())
    ctx = CommandContext(restaurant, actor="user:test", request_id="poison-test")
    category = shop.menu.create_category(ctx, CategoryCreate(name="Coffee")).body["id"]
    item = shop.menu.add_item(
        ctx, MenuItemCreate(name="Latte", category_id=category, price_cents=400)
    ).body["id"]

    def place(customer: str) -> str:
        body = OrderCreate(
            customer_name=customer, items=[OrderItemCreate(menu_item_id=item, quantity=1)]
        )
        return str(shop.orders.place(ctx, body).body["id"])

    def live_projectors(fixed: bool) -> list[Projector]:
        real = build_projectors(shop)
        return [
            p
            if fixed or p.name != "orders"
            else Projector(poisoned(p.projection), shop.engine, shop.store)
            for p in real
        ]

    names = ["Ana", "Björn", "Chidi", "Dana", "Emeka", "Fatima"]
    before = [place(name) for name in names[:3]]
    poison = place(POISON)
    poison_seq = shop.store.head(restaurant)
    after = [place(name) for name in names[3:]]
    head = shop.store.head(restaurant)

    def position(name: str) -> int:
        with shop.engine.connect() as conn:
            return tracking.checkpoint_of(conn, name, restaurant)

    def state(name: str) -> str:
        with shop.engine.connect() as conn:
            return tracking.states(conn).get(name, ("idle", None))[0]

    # Buggy code deployed: the projector runs over Redis with the broken orders handler.
    _run_until(
        shop,
        live_projectors(fixed=False),
        lambda: (
            state("orders") == "failed"
            and all(position(n) == head for n in ("order_history", "menu", "daily_sales"))
        ),
    )
    assert position("orders") == poison_seq - 1  # stopped exactly before the poison event
    assert _order_ids(shop, restaurant) == set(before)  # nothing after it was skipped

    report = render_report(projection_report(shop), shop.clock())
    assert "orders failed: projection orders failed at OrderPlaced" in report
    assert "cannot project an order for Poison Pete" in report
    with TestClient(create_app(shop.settings, shop)) as client:
        ready = client.get("/health/ready")
    assert ready.status_code == 200
    body = ready.json()["projections"]
    assert body["orders"]["state"] == "failed"
    assert "Poison Pete" in body["orders"]["error"]
    assert body["orders"]["lag_events"] == head - poison_seq + 1
    assert body["order_history"]["state"] == "live"

    # The fix is deployed and the projector restarted: it resumes at the poison event.
    _run_until(shop, live_projectors(fixed=True), lambda: position("orders") == head)
    assert state("orders") == "live"
    assert _order_ids(shop, restaurant) == {*before, poison, *after}


def _order_ids(shop: Container, restaurant: str) -> set[str]:
    with shop.engine.connect() as conn:
        rows = conn.execute(select(orders.c.order_id).where(orders.c.restaurant_id == restaurant))
        return {row.order_id for row in rows}


def _run_until(container: Container, projectors: list[Projector], done: Callable[[], Any]) -> None:
    async def scenario() -> None:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(run_relay(container, stop)),
            asyncio.create_task(
                run_projectors(container, [], stop, projectors=projectors, catch_up_interval_s=0.3)
            ),
        ]
        try:
            deadline = time.monotonic() + 30
            while not await asyncio.to_thread(done):
                assert time.monotonic() < deadline, "the read side did not get there in 30 s"
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    asyncio.run(scenario())
