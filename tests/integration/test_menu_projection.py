"""The menu projection on both backends: rows follow the commands, deliveries of any order
and multiplicity give the same rows, and every menu event bumps the menu generation."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, inspect, select

from coffeeshop.commands.handling import CommandContext, CommandExecutor
from coffeeshop.commands.menu_handlers import MenuCommands
from coffeeshop.commands.models import (
    AvailabilityUpdate,
    CategoryCreate,
    CategoryUpdate,
    MenuItemCreate,
    MenuItemUpdate,
)
from coffeeshop.events.registry import registry
from coffeeshop.events.store import EventStore
from coffeeshop.projections import menu
from coffeeshop.projections.projector import Projector
from coffeeshop.queries.menu import menu_generation


class StepClock:
    """A clock that moves one second per reading: recorded_at differs event to event."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class MenuWorld:
    """A restaurant's menu driven through the command side, projected on demand."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.store = EventStore(engine, registry, StepClock())
        self.commands = MenuCommands(CommandExecutor(self.store, StepClock()))
        self.restaurant_id = str(uuid.uuid4())
        self.ctx = CommandContext(restaurant_id=self.restaurant_id, actor="user:test")
        self.projector = Projector(menu.build(), engine, self.store)

    def category(self, name: str, sort_order: int = 0) -> str:
        body = CategoryCreate(name=name, sort_order=sort_order)
        return str(self.commands.create_category(self.ctx, body).body["id"])

    def item(self, category_id: str, name: str, price_cents: int = 350, **extra: Any) -> str:
        body = MenuItemCreate(
            name=name,
            category_id=uuid.UUID(category_id),
            price_cents=price_cents,
            **extra,
        )
        return str(self.commands.add_item(self.ctx, body).body["id"])

    def project(self) -> int:
        return self.projector.catch_up_restaurant(
            self.restaurant_id, self.store.head(self.restaurant_id)
        )

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        """This restaurant's rows of every menu table, in a stable order."""
        found: dict[str, list[dict[str, Any]]] = {}
        with self.engine.connect() as conn:
            for table in menu.TABLES:
                key = list(table.primary_key.columns)
                rows = conn.execute(
                    select(table).where(table.c.restaurant_id == self.restaurant_id).order_by(*key)
                ).all()
                found[table.name] = [dict(row._mapping) for row in rows]
        return found

    def reset(self) -> None:
        """Forget this restaurant's projected rows and checkpoint (as a rebuild would)."""
        with self.engine.begin() as conn:
            for table in menu.TABLES:
                conn.execute(delete(table).where(table.c.restaurant_id == self.restaurant_id))
            conn.execute(
                delete(menu.CHECKPOINTS).where(
                    menu.CHECKPOINTS.c.restaurant_id == self.restaurant_id,
                )
            )

    def generation(self) -> int:
        with self.engine.connect() as conn:
            return menu_generation(conn, self.restaurant_id)


@pytest.fixture
def world(engine: Engine) -> MenuWorld:
    return MenuWorld(engine)


def _busy_menu(world: MenuWorld) -> dict[str, str]:
    """A menu that went through every kind of change."""
    drinks = world.category("Drinks", sort_order=1)
    food = world.category("Food", sort_order=2)
    gone = world.category("Seasonal", sort_order=3)
    latte = world.item(drinks, "Latte", 420, description="Double shot")
    tea = world.item(drinks, "Tea", 300)
    bagel = world.item(food, "Bagel", 250, is_available=False)
    pumpkin = world.item(gone, "Pumpkin Spice", 500)
    c = world.commands
    c.update_item(world.ctx, latte, MenuItemUpdate(name="Caffè Latte", price_cents=450))
    c.update_item(world.ctx, tea, MenuItemUpdate(category_id=uuid.UUID(food)))
    c.update_item(world.ctx, tea, MenuItemUpdate(description="Green"))
    c.set_availability(world.ctx, bagel, AvailabilityUpdate(is_available=True))
    c.set_availability(world.ctx, latte, AvailabilityUpdate(is_available=False))
    c.archive_item(world.ctx, pumpkin)
    c.remove_category(world.ctx, gone)
    c.update_category(world.ctx, food, CategoryUpdate(name="Kitchen", sort_order=0))
    return {
        "drinks": drinks,
        "food": food,
        "gone": gone,
        "latte": latte,
        "tea": tea,
        "bagel": bagel,
        "pumpkin": pumpkin,
    }


def test_rows_follow_every_menu_change(world: MenuWorld) -> None:
    ids = _busy_menu(world)
    world.project()
    rows = world.rows()

    categories = {row["category_id"]: row for row in rows["menu_categories"]}
    assert set(categories) == {ids["drinks"], ids["food"]}  # the removed one is deleted
    kitchen = categories[ids["food"]]
    assert (kitchen["name"], kitchen["sort_order"]) == ("Kitchen", 0)
    # Every event of the category's stream counts, membership changes included.
    assert kitchen["version"] == world.store.stream_version(ids["food"])
    assert categories[ids["drinks"]]["version"] == world.store.stream_version(ids["drinks"])

    items = {row["menu_item_id"]: row for row in rows["menu_items"]}
    latte, tea, bagel, pumpkin = (items[ids[k]] for k in ("latte", "tea", "bagel", "pumpkin"))
    assert latte["name"] == "Caffè Latte"
    assert latte["search_name"] == "caffè latte"
    assert (latte["price_cents"], bool(latte["is_available"])) == (450, False)
    assert latte["description"] == "Double shot"
    assert (tea["category_id"], tea["description"]) == (ids["food"], "Green")
    assert bool(bagel["is_available"]) is True
    assert bool(pumpkin["archived"]) is True
    assert not any(bool(items[ids[k]]["archived"]) for k in ("latte", "tea", "bagel"))
    for key in ("latte", "tea", "bagel", "pumpkin"):
        assert items[ids[key]]["version"] == world.store.stream_version(ids[key])

    last = world.store.load_stream(world.restaurant_id, ids["latte"])[-1]
    assert latte["updated_at"] == last.recorded_at.replace(tzinfo=None)


def test_generation_counts_the_menu_events_it_applied(world: MenuWorld) -> None:
    assert world.generation() == 0
    drinks = world.category("Drinks")
    world.project()
    assert world.generation() == 1

    world.item(drinks, "Latte")  # MenuItemAdded + CategoryItemAttached
    world.project()
    assert world.generation() == 3

    world.commands.update_category(world.ctx, drinks, CategoryUpdate(name="Hot drinks"))
    assert world.generation() == 3  # not projected yet: the generation moves with the rows
    world.project()
    assert world.generation() == 4
    assert world.generation() == len(world.store.read_restaurant(world.restaurant_id))


def test_duplicated_and_reordered_delivery_gives_identical_rows(world: MenuWorld) -> None:
    _busy_menu(world)
    events = world.store.read_restaurant(world.restaurant_id)
    world.project()
    in_order = world.rows()
    assert in_order["menu_generations"][0]["generation"] == len(events)

    rng = random.Random(20260314)
    for _ in range(3):
        world.reset()
        delivered = events + rng.sample(events, len(events) // 2)  # duplicates
        rng.shuffle(delivered)
        for start in range(0, len(delivered), 3):
            world.projector.apply_batch(delivered[start : start + 3])
        assert world.rows() == in_order

    # Delivering everything again changes nothing.
    world.projector.apply_batch(events)
    assert world.rows() == in_order


def test_restaurants_do_not_see_each_others_rows(engine: Engine) -> None:
    one, two = MenuWorld(engine), MenuWorld(engine)
    one.item(one.category("Drinks"), "Latte")
    two.category("Food")
    one.project()
    two.project()
    assert [row["name"] for row in one.rows()["menu_categories"]] == ["Drinks"]
    assert [row["name"] for row in two.rows()["menu_categories"]] == ["Food"]
    assert two.rows()["menu_items"] == []
    assert (one.generation(), two.generation()) == (3, 1)


@pytest.mark.parametrize("table", menu.TABLES, ids=lambda t: t.name)
def test_migrations_create_what_the_table_definitions_say(engine: Engine, table: Any) -> None:
    inspector = inspect(engine)
    columns = {column["name"]: column for column in inspector.get_columns(table.name)}
    assert set(columns) == set(table.c.keys())
    for column in table.c:
        assert columns[column.name]["nullable"] == column.nullable, column.name
    primary = inspector.get_pk_constraint(table.name)["constrained_columns"]
    assert primary == [column.name for column in table.primary_key.columns]
    indexes = {index["name"]: index["column_names"] for index in inspector.get_indexes(table.name)}
    for index in table.indexes:
        assert indexes.get(index.name) == [column.name for column in index.columns], index.name


def test_items_are_indexed_as_the_customer_asked(engine: Engine) -> None:
    indexes = [index["column_names"] for index in inspect(engine).get_indexes("menu_items")]
    assert ["restaurant_id", "category_id"] in indexes
    assert ["restaurant_id", "is_available"] in indexes
