"""Bench restaurants, opened through the command side: sign-up, a menu, its items' states."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from coffeeshop.api.container import Container
from coffeeshop.api.identity.schemas import SignupCreate, SignupPublic
from coffeeshop.commands import menu_item
from coffeeshop.commands.handling import CommandContext, CommandExecutor
from coffeeshop.commands.models import CategoryCreate, MenuItemCreate

PASSWORD = "bench-password-0123456789"


def sign_up(
    container: Container, name: str, email: str, request_id: str
) -> tuple[SignupPublic, CommandContext]:
    """A new restaurant and its owner, and the owner's context for commands."""
    signup = container.identity.signup(
        SignupCreate(
            restaurant_name=name,
            email=email,
            password=PASSWORD,
            timezone="Europe/Berlin",
            currency="EUR",
        )
    )
    ctx = CommandContext(
        signup.restaurant_id, actor=f"user:{signup.user_id}", request_id=request_id
    )
    return signup, ctx


def add_menu(
    container: Container, ctx: CommandContext, menu: Mapping[str, Sequence[tuple[str, int]]]
) -> list[str]:
    """One category per key, in order, with its (name, price in cents) items; the item ids."""
    item_ids: list[str] = []
    for position, (category, entries) in enumerate(menu.items()):
        category_id = container.menu.create_category(
            ctx, CategoryCreate(name=category, sort_order=position)
        ).body["id"]
        for name, price in entries:
            created = container.menu.add_item(
                ctx, MenuItemCreate(name=name, category_id=category_id, price_cents=price)
            )
            item_ids.append(created.body["id"])
    return item_ids


def load_items(
    container: Container, ctx: CommandContext, item_ids: Sequence[str]
) -> list[menu_item.MenuItem]:
    """The items' states, as the command side loads them to price an order."""
    executor = CommandExecutor(container.store, container.clock)
    return [
        executor.load(ctx, item_id, menu_item.MenuItem(), menu_item.evolve).state
        for item_id in item_ids
    ]
