"""The menu read model: categories and items as POS screens and back offices read them.

Removed categories are deleted; archived items stay (``archived``), so a late event for them
still finds its row, but every query leaves them out. ``version`` is the aggregate's stream
version after the event (the ETag of single-item reads); ``updated_at`` is the event's
``recorded_at``.

``menu_generations`` holds, per restaurant, how many menu events this projection applied.
Every handler bumps it in the projector's transaction, so a committed menu change and its new
generation become visible together, and a given generation always names the same menu (replay
reproduces it). Cached menus are keyed by it: nothing ever has to be invalidated.

The projector also announces each new generation to the cache, before its commit, so a reader
can find the current menu in the cache without asking the database (``announce``). The entry
lives ``GENERATION_TTL_S``: if an announcement is lost (Redis blipped, a key was evicted at the
wrong moment), readers ask the tables again within that time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Text,
    select,
)

from coffeeshop.events import menu as ev
from coffeeshop.events.clock import naive_utc
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.schema import Timestamp, Uuid
from coffeeshop.projections.base import CacheWriter, Handler, Projection, decode
from coffeeshop.projections.rows import MissingRow, Rows
from coffeeshop.projections.schema import metadata
from coffeeshop.projections.tracking import checkpoint_table

NAME = "menu"
CHECKPOINTS = checkpoint_table(NAME)
GENERATION_TTL_S = 5

menu_categories = Table(
    "menu_categories",
    metadata,
    Column("category_id", Uuid, primary_key=True),
    Column("restaurant_id", Uuid, nullable=False),
    Column("name", String(100), nullable=False),
    Column("sort_order", Integer, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # The menu and the category list read a restaurant's categories in this order.
    Index("ix_menu_categories_restaurant_order", "restaurant_id", "sort_order", "name"),
)

menu_items = Table(
    "menu_items",
    metadata,
    Column("menu_item_id", Uuid, primary_key=True),
    Column("restaurant_id", Uuid, nullable=False),
    Column("category_id", Uuid, nullable=False),
    Column("name", String(100), nullable=False),
    # casefold(name): a case-insensitive "name contains" that means the same on every backend.
    Column("search_name", String(400), nullable=False),
    Column("description", Text, nullable=False),
    Column("price_cents", Integer, nullable=False),
    Column("is_available", Boolean, nullable=False),
    Column("archived", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("ix_menu_items_restaurant_category", "restaurant_id", "category_id"),
    Index("ix_menu_items_restaurant_available", "restaurant_id", "is_available"),
    # The item list: a restaurant's active items by name (keyset on name, id).
    Index("ix_menu_items_restaurant_archived_name", "restaurant_id", "archived", "name"),
)

menu_generations = Table(
    "menu_generations",
    metadata,
    Column("restaurant_id", Uuid, primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

TABLES = (menu_categories, menu_items, menu_generations)


def build() -> Projection:
    handlers: dict[str, Handler] = {
        ev.CategoryCreated.event_type: _category_created,
        ev.CategoryRenamed.event_type: _category_renamed,
        ev.CategoryReordered.event_type: _category_reordered,
        ev.CategoryItemAttached.event_type: _category_touched,
        ev.CategoryItemDetached.event_type: _category_touched,
        ev.CategoryRemoved.event_type: _category_removed,
        ev.MenuItemAdded.event_type: _item_added,
        ev.MenuItemRenamed.event_type: _item_renamed,
        ev.MenuItemDescriptionChanged.event_type: _item_description_changed,
        ev.MenuItemPriceChanged.event_type: _item_price_changed,
        ev.MenuItemMoved.event_type: _item_moved,
        ev.MenuItemAvailabilityChanged.event_type: _item_availability_changed,
        ev.MenuItemArchived.event_type: _item_archived,
    }
    return Projection(name=NAME, tables=TABLES, handlers=handlers, announce=announce)


def generation_cache_key(restaurant_id: str) -> str:
    return f"menu-generation:{restaurant_id}"


def generation_entry(restaurant_id: str, generation: int) -> tuple[str, bytes, int]:
    """Key, value and TTL of a generation in the cache, for whoever writes one."""
    return generation_cache_key(restaurant_id), b"%d" % generation, GENERATION_TTL_S


def announce(conn: Connection, cache: CacheWriter, restaurant_ids: Sequence[str]) -> None:
    """The generations this transaction makes current, read inside it, into the cache."""
    g = menu_generations.c
    query = select(g.restaurant_id, g.generation).where(g.restaurant_id.in_(restaurant_ids))
    for restaurant_id, generation in conn.execute(query):
        cache.set(*generation_entry(restaurant_id, generation))


def search_key(text: str) -> str:
    """What ``search_name`` holds and what a search term is compared as."""
    return text.casefold()


# -- categories ----------------------------------------------------------------------------


def _category_created(rows: Rows, event: RecordedEvent) -> None:
    created = decode(event, ev.CategoryCreated)
    rows.insert(
        menu_categories,
        {
            "category_id": created.category_id,
            "restaurant_id": event.restaurant_id,
            "name": created.name,
            "sort_order": created.sort_order,
            **_stamp(event),
        },
    )
    _bump(rows, event)


def _category_renamed(rows: Rows, event: RecordedEvent) -> None:
    _set(rows, menu_categories, event, name=decode(event, ev.CategoryRenamed).name)


def _category_reordered(rows: Rows, event: RecordedEvent) -> None:
    _set(rows, menu_categories, event, sort_order=decode(event, ev.CategoryReordered).sort_order)


def _category_touched(rows: Rows, event: RecordedEvent) -> None:
    """Membership changes move the category's version (its ETag) and nothing visible."""
    _set(rows, menu_categories, event)


def _category_removed(rows: Rows, event: RecordedEvent) -> None:
    _own(rows, menu_categories, event)
    rows.delete(menu_categories, category_id=event.stream_id)
    _bump(rows, event)


# -- items ---------------------------------------------------------------------------------


def _item_added(rows: Rows, event: RecordedEvent) -> None:
    added = decode(event, ev.MenuItemAdded)
    rows.insert(
        menu_items,
        {
            "menu_item_id": added.menu_item_id,
            "restaurant_id": event.restaurant_id,
            "category_id": added.category_id,
            "name": added.name,
            "search_name": search_key(added.name),
            "description": added.description,
            "price_cents": added.price_cents,
            "is_available": added.is_available,
            "archived": False,
            **_stamp(event),
        },
    )
    _bump(rows, event)


def _item_renamed(rows: Rows, event: RecordedEvent) -> None:
    name = decode(event, ev.MenuItemRenamed).name
    _set(rows, menu_items, event, name=name, search_name=search_key(name))


def _item_description_changed(rows: Rows, event: RecordedEvent) -> None:
    description = decode(event, ev.MenuItemDescriptionChanged).description
    _set(rows, menu_items, event, description=description)


def _item_price_changed(rows: Rows, event: RecordedEvent) -> None:
    _set(rows, menu_items, event, price_cents=decode(event, ev.MenuItemPriceChanged).price_cents)


def _item_moved(rows: Rows, event: RecordedEvent) -> None:
    _set(rows, menu_items, event, category_id=decode(event, ev.MenuItemMoved).category_id)


def _item_availability_changed(rows: Rows, event: RecordedEvent) -> None:
    available = decode(event, ev.MenuItemAvailabilityChanged).is_available
    _set(rows, menu_items, event, is_available=available)


def _item_archived(rows: Rows, event: RecordedEvent) -> None:
    _set(rows, menu_items, event, archived=True)


# -- shared --------------------------------------------------------------------------------


def _key(table: Table, event: RecordedEvent) -> dict[str, Any]:
    column = "category_id" if table is menu_categories else "menu_item_id"
    return {column: event.stream_id}


def _own(rows: Rows, table: Table, event: RecordedEvent) -> None:
    """The stream's row exists and belongs to the event's restaurant, or the model is broken."""
    row = rows.get(table, **_key(table, event))
    if row is None or row["restaurant_id"] != event.restaurant_id:
        raise MissingRow(f"{table.name} has no row {event.stream_id}; cannot apply {event.type}")


def _set(rows: Rows, table: Table, event: RecordedEvent, **values: Any) -> None:
    _own(rows, table, event)
    rows.update(table, _key(table, event), **values, **_stamp(event))
    _bump(rows, event)


def _bump(rows: Rows, event: RecordedEvent) -> None:
    """One more menu event applied for this restaurant (same transaction as the change)."""
    rows.add(
        menu_generations,
        {"restaurant_id": event.restaurant_id},
        zeros={"generation": 0},
        deltas={"generation": 1},
    )


def _stamp(event: RecordedEvent) -> dict[str, Any]:
    return {"version": event.version, "updated_at": naive_utc(event.recorded_at)}
