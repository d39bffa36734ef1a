"""A restaurant's trading day through the command side, and snapshots of read tables."""

from __future__ import annotations

import random
import uuid
from typing import Any

from sqlalchemy import Engine, inspect, select

from coffeeshop.api.container import Container
from coffeeshop.api.runtime import build_projectors
from coffeeshop.commands.handling import CommandContext
from coffeeshop.commands.models import (
    CancellationCreate,
    CategoryCreate,
    MenuItemCreate,
    MenuItemUpdate,
    OrderCreate,
    OrderItemCreate,
    PaymentCreate,
)
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.projections.base import Handler, Projection
from coffeeshop.projections.rows import Rows


def trade(
    container: Container, orders: int, seed: int = 7, restaurant_id: str | None = None
) -> str:
    """A restaurant, its menu and ``orders`` orders in every state, with item changes."""
    rng = random.Random(seed)
    restaurant = restaurant_id or str(uuid.uuid4())
    ctx = CommandContext(restaurant, actor="user:test", request_id=f"trade-{seed}")
    menu, commands = container.menu, container.orders
    category = menu.create_category(ctx, CategoryCreate(name="Coffee")).body["id"]
    prices = {}
    for name, price in (("Latte", 400), ("Tea", 250), ("Cake", 375)):
        body = MenuItemCreate(name=name, category_id=category, price_cents=price)
        prices[menu.add_item(ctx, body).body["id"]] = price
    items = list(prices)
    for n in range(orders):
        if n and n % 7 == 0:  # the menu changes during the day
            item = rng.choice(items)
            prices[item] += 25
            menu.update_item(ctx, item, MenuItemUpdate(price_cents=prices[item]))
        first = rng.choice(items)
        quantity = rng.randint(1, 3)
        body = OrderCreate(items=[OrderItemCreate(menu_item_id=first, quantity=quantity)])
        order_id = commands.place(ctx, body).body["id"]
        total = prices[first] * quantity
        if rng.random() < 0.4:
            extra = rng.choice(items)
            line = commands.add_item(ctx, order_id, OrderItemCreate(menu_item_id=extra, quantity=1))
            if rng.random() < 0.3:
                commands.remove_item(ctx, order_id, line.body["line_id"])
            else:
                total += prices[extra]
        fate = rng.random()
        if fate < 0.1:
            commands.cancel(ctx, order_id, CancellationCreate(reason="changed their mind"))
            continue
        steps = (commands.start, commands.mark_ready, commands.serve)
        for step in steps[: rng.randint(0, 3)] if fate < 0.4 else steps:
            step(ctx, order_id)
        if fate >= 0.4:
            payment = PaymentCreate(method=rng.choice(["cash", "card"]), amount_cents=total)
            commands.pay(ctx, order_id, payment)
    return restaurant


class Crash(BaseException):
    """Stands in for kill -9: nothing after it runs, the open transaction is lost."""


def crashing(projection: Projection, after: int) -> Projection:
    """``projection`` whose handlers raise Crash once ``after`` events have been applied."""
    applied = 0

    def wrap(handler: Handler) -> Handler:
        def run(rows: Rows, event: RecordedEvent) -> None:
            nonlocal applied
            applied += 1
            if applied > after:
                raise Crash
            handler(rows, event)

        return run

    handlers = {name: wrap(handler) for name, handler in projection.handlers.items()}
    return Projection(projection.name, projection.tables, handlers, projection.prefetch)


def project_live(container: Container) -> None:
    """What the live projectors would have done: apply everything in the store."""
    for projector in build_projectors(container):
        projector.catch_up()


def projections(container: Container) -> list[Projection]:
    return [projector.projection for projector in build_projectors(container)]


def snapshot(engine: Engine, chosen: list[Projection]) -> dict[str, list[dict[str, Any]]]:
    """Every row of the projections' read tables, and their positions, in key order."""
    found: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for projection in chosen:
            for table in projection.tables:
                rows = conn.execute(select(table).order_by(*table.primary_key.columns))
                found[table.name] = [dict(row._mapping) for row in rows]
            checkpoints = projection.checkpoints
            rows = conn.execute(
                select(checkpoints.c.restaurant_id, checkpoints.c.seq)
                .where(checkpoints.c.seq > 0)
                .order_by(checkpoints.c.restaurant_id)
            )
            found[checkpoints.name] = [dict(row._mapping) for row in rows]
    return found


def leftover_copies(engine: Engine) -> list[str]:
    names = inspect(engine).get_table_names()
    return sorted(n for n in names if n.endswith(("__next", "__old", "__verify")))
