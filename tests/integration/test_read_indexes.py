"""The menu item, user and order lists stay on their indexes (MariaDB EXPLAIN).

Neither ``coffeeshop.queries.menu.list_items`` nor ``IdentityService.list_users`` exposes
its statement, so ``item_list_query`` and ``user_list_query`` below rebuild them with
SQLAlchemy Core from the same table definitions, clause for clause (list_items: restaurant,
not archived, optional category / availability filters, by name then id, limit + 1, offset or
keyset; list_users via ``IdentityService._page``: restaurant, by created_at then id, limit + 1,
offset or the service's own keyset clause ``_after``). A test below checks that each rebuilt
statement returns the same rows as the real function, so the mirror cannot silently drift.

The rows (two tenants, a few thousand items and users) are inserted in a transaction that is
rolled back: nobody else ever sees them.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, Select, delete, insert, select, text

from coffeeshop.api.identity.credentials import PasswordHasher
from coffeeshop.api.identity.principal import Principal
from coffeeshop.api.identity.roles import Role
from coffeeshop.api.identity.service import IdentityService, _after
from coffeeshop.api.identity.tables import restaurants, users
from coffeeshop.events.clock import utc_now
from coffeeshop.events.registry import registry
from coffeeshop.events.store import EventStore
from coffeeshop.projections.menu import menu_items
from coffeeshop.projections.orders import orders as orders_table
from coffeeshop.queries import menu as menu_queries
from coffeeshop.queries import orders as order_queries
from coffeeshop.queries.pagination import PageRequest

BASE = datetime(2026, 3, 1, tzinfo=UTC).replace(tzinfo=None)
ITEMS_PER_TENANT = 2_000
CATEGORIES_PER_TENANT = 40
USERS_PER_TENANT = 1_500
LIMIT = 20


def explain(conn: Connection, statement: Any) -> list[dict[str, Any]]:
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    return [dict(row._mapping) for row in conn.execute(text(f"EXPLAIN {compiled}"))]


def item_list_query(
    restaurant_id: str, filters: menu_queries.ItemFilters, cursor: list[Any] | None
) -> Select[Any]:
    """What list_items executes for a page of ``LIMIT`` (its page statement)."""
    page = PageRequest(limit=LIMIT, cursor=cursor)
    ordered, _ = menu_queries.items_query(restaurant_id, filters, page)
    return ordered


def user_list_query(restaurant_id: str, cursor: list[Any] | None) -> Select[Any]:
    """What IdentityService.list_users executes for a page of ``LIMIT`` (via ``_page``)."""
    query = select(users).where(users.c.restaurant_id == restaurant_id)
    ordered = query.order_by(users.c.created_at, users.c.id).limit(LIMIT + 1)
    if cursor is not None:
        return ordered.where(_after(users.c, cursor))
    return ordered.offset(0)


class Tenants:
    def __init__(self) -> None:
        self.ids = [str(uuid.uuid4()), str(uuid.uuid4())]
        self.categories = {
            rid: [str(uuid.uuid4()) for _ in range(CATEGORIES_PER_TENANT)] for rid in self.ids
        }

    def item_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "menu_item_id": str(uuid.uuid4()),
                "restaurant_id": rid,
                "category_id": self.categories[rid][n % CATEGORIES_PER_TENANT],
                "name": f"Item {n:05d}",
                "search_name": f"item {n:05d}",
                "description": "",
                "price_cents": n,
                "is_available": n % 10 != 0,  # a few are sold out
                "archived": n % 7 == 0,
                "version": 1,
                "updated_at": BASE,
            }
            for rid in self.ids
            for n in range(ITEMS_PER_TENANT)
        ]

    def restaurant_rows(self) -> list[dict[str, Any]]:
        return [
            {"id": rid, "name": "Props", "timezone": "UTC", "currency": "EUR", "created_at": BASE}
            for rid in self.ids
        ]

    def user_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "id": str(uuid.uuid4()),
                "restaurant_id": rid,
                "email": f"u{n}-{uuid.uuid4().hex[:12]}@example.test",
                "password_hash": "x",
                "role": "staff",
                "is_active": True,
                "created_at": BASE + timedelta(seconds=n),
            }
            for rid in self.ids
            for n in range(USERS_PER_TENANT)
        ]


def fill(conn: Connection, tenants: Tenants) -> None:
    conn.execute(insert(restaurants), tenants.restaurant_rows())
    conn.execute(insert(users), tenants.user_rows())
    conn.execute(insert(menu_items), tenants.item_rows())
    conn.execute(text("ANALYZE TABLE menu_items, users"))


def restaurant_prefix_length(conn: Connection) -> int:
    """key_len of a plan that uses only the restaurant_id part of a menu_items index."""
    only = select(menu_items).where(menu_items.c.restaurant_id == str(uuid.uuid4()))
    plan = explain(conn, only)
    assert plan[0]["key"] is not None, plan
    return int(plan[0]["key_len"])


def check_plan(plan: list[dict[str, Any]], expected: set[str]) -> None:
    assert len(plan) == 1, plan
    assert plan[0]["key"] is not None, plan
    assert plan[0]["key"] in expected, plan
    assert plan[0]["type"] != "ALL", plan


ITEMS = "ix_menu_items_restaurant_"
# (category filter?, is_available filter, acceptable indexes, must come in index order?)
# With an availability filter the planner may rightly prefer (restaurant, archived, name),
# which also serves the ORDER BY; either way it must seek on more than the restaurant.
ITEM_CASES: dict[str, tuple[bool, bool | None, set[str], bool]] = {
    "category": (True, None, {ITEMS + "category"}, False),
    "available": (False, True, {ITEMS + "available", ITEMS + "archived_name"}, False),
    "sold-out": (False, False, {ITEMS + "available", ITEMS + "archived_name"}, False),
    "all": (False, None, {ITEMS + "archived_name"}, True),
}


@pytest.mark.parametrize("case", list(ITEM_CASES))
@pytest.mark.parametrize("keyset", [False, True], ids=["offset", "keyset"])
def test_the_item_list_uses_its_index(mysql_engine: Engine, case: str, keyset: bool) -> None:
    tenants = Tenants()
    restaurant_id = tenants.ids[0]
    category, available, indexes, index_order = ITEM_CASES[case]
    if keyset:
        # The cursor makes the name sargable too: (restaurant, archived, name) is then as good
        # a seek as the category's, and which one wins depends on sampled statistics.
        indexes = indexes | {ITEMS + "archived_name"}
    filters = menu_queries.ItemFilters(
        category_id=tenants.categories[restaurant_id][3] if category else None,
        is_available=available,
    )
    cursor = ["Item 01000", str(uuid.uuid4())] if keyset else None
    with mysql_engine.connect() as conn, conn.begin() as transaction:
        fill(conn, tenants)  # rolled back: never seen by anyone else
        query = item_list_query(restaurant_id, filters, cursor)
        plan = explain(conn, query)
        prefix = restaurant_prefix_length(conn)
        found = conn.execute(query).all()
        transaction.rollback()
    check_plan(plan, indexes)
    # More than restaurant_id is sought in the index: the filter / archived part is sargable.
    assert int(plan[0]["key_len"]) > prefix, (prefix, plan)
    if index_order:
        assert "filesort" not in (plan[0]["Extra"] or ""), plan  # rows come in index order
    assert found, plan
    assert {row.restaurant_id for row in found} == {restaurant_id}


@pytest.mark.parametrize("keyset", [False, True], ids=["offset", "keyset"])
def test_the_user_list_uses_its_index(mysql_engine: Engine, keyset: bool) -> None:
    tenants = Tenants()
    restaurant_id = tenants.ids[1]
    cursor = (
        [(BASE + timedelta(seconds=700)).replace(tzinfo=UTC).isoformat(), ""] if keyset else None
    )
    with mysql_engine.connect() as conn, conn.begin() as transaction:
        fill(conn, tenants)
        query = user_list_query(restaurant_id, cursor)
        plan = explain(conn, query)
        found = conn.execute(query).all()
        transaction.rollback()
    check_plan(plan, {"ix_users_restaurant_created"})
    assert "filesort" not in (plan[0]["Extra"] or ""), plan  # rows come in index order
    assert len(found) == LIMIT + 1
    assert {row.restaurant_id for row in found} == {restaurant_id}


# -- the mirrors above are the statements the real functions run --------------------------------


def test_the_mirrored_statements_return_what_the_real_functions_return(
    mysql_engine: Engine,
) -> None:
    """Committed rows this time (the functions open their own connections); removed after."""
    tenants = Tenants()
    restaurant_id = tenants.ids[0]
    with mysql_engine.begin() as conn:
        conn.execute(insert(restaurants), tenants.restaurant_rows())
        conn.execute(insert(users), tenants.user_rows()[:60])
        conn.execute(insert(menu_items), tenants.item_rows()[:300])
    try:
        for category, available, _indexes, _order in ITEM_CASES.values():
            filters = menu_queries.ItemFilters(
                category_id=tenants.categories[restaurant_id][3] if category else None,
                is_available=available,
            )
            for cursor in [None, ["Item 00100", ""]]:
                page = PageRequest(limit=LIMIT, cursor=cursor)
                real = menu_queries.list_items(mysql_engine, restaurant_id, filters, page)
                with mysql_engine.connect() as conn:
                    rows = conn.execute(item_list_query(restaurant_id, filters, cursor)).all()
                assert [view.id for view in real.items] == [r.menu_item_id for r in rows][:LIMIT]
                assert real.items, filters

        store = EventStore(mysql_engine, registry)
        service = IdentityService(mysql_engine, store, PasswordHasher(), utc_now)
        caller = Principal(restaurant_id=restaurant_id, role=Role.OWNER)
        for cursor in [None, [(BASE + timedelta(seconds=10)).replace(tzinfo=UTC).isoformat(), ""]]:
            page = PageRequest(limit=LIMIT, cursor=cursor)
            listed = service.list_users(caller, page)
            with mysql_engine.connect() as conn:
                rows = conn.execute(user_list_query(restaurant_id, cursor)).all()
            assert [user.id for user in listed.items] == [row.id for row in rows][:LIMIT]
            assert listed.items
    finally:
        with mysql_engine.begin() as conn:
            for table in (menu_items, users):
                conn.execute(delete(table).where(table.c.restaurant_id.in_(tenants.ids)))
            conn.execute(delete(restaurants).where(restaurants.c.id.in_(tenants.ids)))


# -- the order list ------------------------------------------------------------------------------

ORDERS_PER_TENANT = 3_000


def _order_rows(restaurant_id: str) -> list[dict[str, Any]]:
    return [
        {
            "order_id": str(uuid.uuid4()),
            "restaurant_id": restaurant_id,
            "status": "paid" if n % 7 else "cancelled",
            "table_id": None,
            "customer_name": None,
            "notes": "",
            "lines": [],
            "total_cents": 450,
            "tip_cents": 0,
            "paid_cents": 450,
            "payment_method": "card",
            "created_at": BASE + timedelta(seconds=n),
            "updated_at": BASE + timedelta(seconds=n),
            "version": 5,
            "last_seq": n + 1,
        }
        for n in range(ORDERS_PER_TENANT)
    ]


@pytest.mark.parametrize("statuses", [(), ("cancelled",)], ids=["all", "status"])
@pytest.mark.parametrize("paging", ["offset", "keyset"])
def test_an_order_page_past_the_first_finds_its_ids_on_the_index_alone(
    mysql_engine: Engine, paging: str, statuses: tuple[str, ...]
) -> None:
    """Asked for whole rows past a cursor, MariaDB walked the restaurant's index from its
    newest entry with a row lookup each (25 s half-way down 1M orders): the page's ids come
    from an index-only derived table, then only those rows are read."""
    restaurant_id = str(uuid.uuid4())
    rows = _order_rows(restaurant_id)
    listed = [row for row in rows if not statuses or row["status"] in statuses]
    middle = listed[len(listed) // 2]
    cursor = [
        "-created_at",
        middle["created_at"].replace(tzinfo=UTC).isoformat(),
        middle["order_id"],
    ]
    if paging == "keyset":
        page = PageRequest(skip=0, limit=LIMIT, cursor=cursor)
    else:
        page = PageRequest(skip=len(listed) - len(listed) // 2 - 1, limit=LIMIT)
    query = order_queries.list_query(
        restaurant_id, order_queries.OrderFilters(statuses=statuses), page
    )
    with mysql_engine.connect() as conn, conn.begin() as transaction:
        conn.execute(insert(orders_table), rows)  # rolled back: never seen by anyone else
        plan = explain(conn, query)
        found = conn.execute(query).all()
        transaction.rollback()
    [derived] = [step for step in plan if step["select_type"] == "DERIVED"]
    assert derived["key"] in {"ix_orders_restaurant_created", "ix_orders_restaurant_status_created"}
    assert "Using index" in (derived["Extra"] or ""), plan
    assert len(found) == LIMIT + 1
    created = [row.created_at for row in found]
    assert created == sorted(created, reverse=True)
    assert all(row.created_at <= middle["created_at"] for row in found)
