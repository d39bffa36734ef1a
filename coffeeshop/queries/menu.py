"""Menu queries: the whole menu (cached by menu generation), categories and items."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Engine, Row, Select, and_, false, func, or_, select

from coffeeshop.projections.menu import (
    generation_cache_key,
    generation_entry,
    menu_categories,
    menu_generations,
    menu_items,
    search_key,
)
from coffeeshop.queries.cache import Cache
from coffeeshop.queries.metrics import CACHE_LOOKUPS
from coffeeshop.queries.pagination import InvalidCursor, Page, PageRequest, build_page

MENU_TTL_S = 300
# Part of every cache key: bump it when the cached document's shape changes.
MENU_FORMAT = "v1"


class MenuEntry(BaseModel):
    id: str
    name: str
    description: str
    price_cents: int
    is_available: bool


class MenuCategory(BaseModel):
    id: str
    name: str
    sort_order: int
    items: list[MenuEntry]


class Menu(BaseModel):
    categories: list[MenuCategory]


class CategoryView(BaseModel):
    id: str
    name: str
    sort_order: int
    version: int
    updated_at: datetime


class MenuItemView(BaseModel):
    id: str
    category_id: str
    name: str
    description: str
    price_cents: int
    is_available: bool
    version: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ItemFilters:
    category_id: str | None = None
    is_available: bool | None = None
    q: str | None = None


# -- the whole menu ------------------------------------------------------------------------


def menu_cache_key(restaurant_id: str, generation: int) -> str:
    return f"menu:{MENU_FORMAT}:{restaurant_id}:{generation}"


def menu_generation(conn: Connection, restaurant_id: str) -> int:
    value = conn.execute(
        select(menu_generations.c.generation).where(
            menu_generations.c.restaurant_id == restaurant_id
        )
    ).scalar()
    return int(value or 0)


async def cached_menu(cache: Cache, restaurant_id: str) -> bytes | None:
    """The current menu straight from the cache, or None: no database, no thread.

    The generation comes from the projector's announcement, made before the commit that
    created it, so it is never older than the committed menu; a document is cached only under
    the generation it was read at. A miss (no announcement, or no document yet) is answered
    by ``current_menu``.
    """
    raw = await cache.aget(generation_cache_key(restaurant_id))
    if raw is None or not raw.isdigit():
        return None
    document = await cache.aget(menu_cache_key(restaurant_id, int(raw)))
    if document is not None:
        CACHE_LOOKUPS.labels("menu", "hit").inc()
    return document


def current_menu(engine: Engine, cache: Cache, restaurant_id: str) -> bytes:
    """The restaurant's menu as JSON bytes (a ``Menu``), from the tables' generation.

    The cache key holds the menu generation, which the projector bumps in the transaction that
    changes the menu, so a menu committed before this call is never answered from an older
    entry. The document is read in one statement; it is cached only when the generation did not
    move between the first read and the last, so an entry holds exactly its generation's menu.
    The generation read is offered to ``cached_menu``'s readers too, unless an announcement
    is there already (it is as new as this read, or newer).
    """
    with engine.connect() as conn:
        generation = menu_generation(conn, restaurant_id)
    cache.add(*generation_entry(restaurant_id, generation))
    key = menu_cache_key(restaurant_id, generation)
    cached = cache.get(key)  # no connection (nor SQLite lock) held while the cache answers
    CACHE_LOOKUPS.labels("menu", "miss" if cached is None else "hit").inc()
    if cached is not None:
        return cached
    with engine.connect() as conn:
        document = Menu(categories=_read_menu(conn, restaurant_id)).model_dump_json().encode()
        unchanged = menu_generation(conn, restaurant_id) == generation
    if unchanged:
        cache.set(key, document, MENU_TTL_S)
    return document


def _read_menu(conn: Connection, restaurant_id: str) -> list[MenuCategory]:
    c, i = menu_categories.c, menu_items.c
    item_join = and_(
        i.category_id == c.category_id,
        i.restaurant_id == c.restaurant_id,
        i.archived == false(),
    )
    query = (
        select(
            c.category_id,
            c.name.label("category_name"),
            c.sort_order,
            i.menu_item_id,
            i.name,
            i.description,
            i.price_cents,
            i.is_available,
        )
        .select_from(menu_categories.outerjoin(menu_items, item_join))
        .where(c.restaurant_id == restaurant_id)
        .order_by(c.sort_order, c.name, c.category_id, i.name, i.menu_item_id)
    )
    categories: list[MenuCategory] = []
    for row in conn.execute(query):
        if not categories or categories[-1].id != row.category_id:
            categories.append(
                MenuCategory(
                    id=row.category_id, name=row.category_name, sort_order=row.sort_order, items=[]
                )
            )
        if row.menu_item_id is not None:
            categories[-1].items.append(
                MenuEntry(
                    id=row.menu_item_id,
                    name=row.name,
                    description=row.description,
                    price_cents=row.price_cents,
                    is_available=bool(row.is_available),
                )
            )
    return categories


# -- categories ----------------------------------------------------------------------------


def list_categories(engine: Engine, restaurant_id: str, page: PageRequest) -> Page[CategoryView]:
    """By sort_order, then name (then id); keyset cursor on those three."""
    c = menu_categories.c
    query = select(menu_categories).where(c.restaurant_id == restaurant_id)
    ordered = query.order_by(c.sort_order, c.name, c.category_id).limit(page.limit + 1)
    if page.cursor is not None:
        sort_order, name, last_id = _cursor(page.cursor, (int, str, str))
        ordered = ordered.where(
            or_(
                c.sort_order > sort_order,
                and_(c.sort_order == sort_order, c.name > name),
                and_(c.sort_order == sort_order, c.name == name, c.category_id > last_id),
            )
        )
    else:
        ordered = ordered.offset(page.skip)
    rows, total = _fetch(engine, ordered, query)
    return build_page(
        [_category_view(row) for row in rows],
        page,
        total,
        key_of=lambda view: [view.sort_order, view.name, view.id],
    )


# -- items ---------------------------------------------------------------------------------


def list_items(
    engine: Engine, restaurant_id: str, filters: ItemFilters, page: PageRequest
) -> Page[MenuItemView]:
    """Active (not archived) items by name (then id); keyset cursor on both."""
    ordered, query = items_query(restaurant_id, filters, page)
    rows, total = _fetch(engine, ordered, query)
    return build_page(
        [_item_view(row) for row in rows], page, total, key_of=lambda view: [view.name, view.id]
    )


def items_query(
    restaurant_id: str, filters: ItemFilters, page: PageRequest
) -> tuple[Select[Any], Select[Any]]:
    """The page statement and the unpaged one (for the total). Equality on the booleans, not
    IS TRUE/FALSE, so MariaDB can use the (restaurant_id, archived, name) index."""
    i = menu_items.c
    query = select(menu_items).where(i.restaurant_id == restaurant_id, i.archived == false())
    if filters.category_id is not None:
        query = query.where(i.category_id == filters.category_id)
    if filters.is_available is not None:
        query = query.where(i.is_available == filters.is_available)
    if filters.q:
        query = query.where(i.search_name.contains(search_key(filters.q), autoescape=True))
    ordered = query.order_by(i.name, i.menu_item_id).limit(page.limit + 1)
    if page.cursor is not None:
        name, last_id = _cursor(page.cursor, (str, str))
        ordered = ordered.where(or_(i.name > name, and_(i.name == name, i.menu_item_id > last_id)))
    else:
        ordered = ordered.offset(page.skip)
    return ordered, query


def get_item(engine: Engine, restaurant_id: str, item_id: str) -> MenuItemView | None:
    """One active item of the restaurant; archived, unknown and other tenants' are None."""
    i = menu_items.c
    query = select(menu_items).where(
        i.menu_item_id == item_id, i.restaurant_id == restaurant_id, i.archived == false()
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _item_view(row)


# -- shared --------------------------------------------------------------------------------


def _fetch(
    engine: Engine, ordered: Select[Any], query: Select[Any]
) -> tuple[Sequence[Row[Any]], int]:
    total_query = select(func.count()).select_from(query.subquery())
    with engine.connect() as conn:
        rows = conn.execute(ordered).all()
        total = conn.execute(total_query).scalar_one()
    return rows, int(total)


def _cursor(cursor: list[Any], types: tuple[type, ...]) -> list[Any]:
    if len(cursor) != len(types) or not all(
        isinstance(value, kind) and not isinstance(value, bool)
        for value, kind in zip(cursor, types, strict=True)
    ):
        raise InvalidCursor("cursor is not valid")
    return cursor


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _category_view(row: Row[Any]) -> CategoryView:
    return CategoryView(
        id=row.category_id,
        name=row.name,
        sort_order=row.sort_order,
        version=row.version,
        updated_at=_utc(row.updated_at),
    )


def _item_view(row: Row[Any]) -> MenuItemView:
    return MenuItemView(
        id=row.menu_item_id,
        category_id=row.category_id,
        name=row.name,
        description=row.description,
        price_cents=row.price_cents,
        is_available=bool(row.is_available),
        version=row.version,
        updated_at=_utc(row.updated_at),
    )
