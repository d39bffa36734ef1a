"""Order queries over the ``orders`` and ``order_history`` read tables, always tenant-scoped.

Lists page by offset (``skip``) or by keyset on ``(created_at, order_id)`` in the sort's
direction, so a cursor walk visits every order once even while new orders arrive. Totals
for status filters come from the projector's counters; other filters count index ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import orjson
from pydantic import BaseModel
from sqlalchemy import ColumnElement, Connection, Engine, Row, Select, and_, func, or_, select

from coffeeshop.projections.order_history import order_history as history
from coffeeshop.projections.orders import order_counters, orders
from coffeeshop.queries.pagination import (
    InvalidCursor,
    Page,
    PageRequest,
    build_page,
    encode_cursor,
)

OrderStatus = Literal["pending", "preparing", "ready", "served", "paid", "cancelled"]
ORDER_STATUSES: tuple[str, ...] = get_args(OrderStatus)
OrderSort = Literal["created_at", "-created_at"]


class OrderLineView(BaseModel):
    line_id: str
    menu_item_id: str
    name: str
    unit_price_cents: int
    quantity: int
    notes: str
    line_total_cents: int


class OrderView(BaseModel):
    id: str
    status: OrderStatus
    table_id: str | None
    customer_name: str | None
    notes: str
    lines: list[OrderLineView]
    total_cents: int
    tip_cents: int
    paid_cents: int
    payment_method: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    ready_at: datetime | None
    served_at: datetime | None
    paid_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    version: int


class HistoryEntry(BaseModel):
    """One event of an order: what happened, who did it, when, and through which request."""

    version: int
    position: int
    type: str
    data: dict[str, Any]
    actor: str | None
    request_id: str | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class OrderFilters:
    statuses: tuple[str, ...] = ()
    table_id: str | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    sort: OrderSort = "-created_at"


def list_orders(
    engine: Engine, restaurant_id: str, filters: OrderFilters, page: PageRequest
) -> Page[OrderView]:
    rows, total = _page_rows(engine, restaurant_id, filters, page)
    return build_page(
        [_order_view(row) for row in rows],
        page,
        total,
        key_of=lambda item: [filters.sort, item.created_at.isoformat(), item.id],
    )


def list_orders_json(
    engine: Engine, restaurant_id: str, filters: OrderFilters, page: PageRequest
) -> bytes:
    """The same page as ``list_orders``, as the JSON of a ``Page[OrderView]``, written by
    orjson straight from the rows: a page of 20 orders through pydantic models cost more
    CPU than the two queries behind it."""
    rows, total = _page_rows(engine, restaurant_id, filters, page)
    has_more = len(rows) > page.limit
    rows = rows[: page.limit]
    last = rows[-1] if has_more and rows else None
    document = {
        "items": [order_document(row) for row in rows],
        "total": total,
        "skip": page.skip,
        "limit": page.limit,
        "has_more": has_more,
        "next_cursor": None
        if last is None
        else encode_cursor([filters.sort, _as_utc(last.created_at).isoformat(), last.order_id]),
    }
    return orjson.dumps(document, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


def _page_rows(
    engine: Engine, restaurant_id: str, filters: OrderFilters, page: PageRequest
) -> tuple[Sequence[Row[Any]], int | None]:
    """The page and its total on one connection (one checkout for both statements)."""
    with engine.connect() as conn:
        rows = conn.execute(list_query(restaurant_id, filters, page)).all()
        total = _total(conn, restaurant_id, filters, page)
    return rows, total


def list_query(restaurant_id: str, filters: OrderFilters, page: PageRequest) -> Select[Any]:
    """One page (plus one row, to tell whether more exist) in index order.

    A page past the first finds its order ids on the index alone (a deferred join), then
    reads just those rows. Offset pages: skipping through whole rows costs a row lookup per
    skipped order. Keyset pages: asked for whole rows, MariaDB walks the restaurant's index
    from its newest entry with a row lookup each, instead of seeking to the cursor (25 s
    half-way down a 1M-order restaurant, against 10 ms on the index alone)."""
    descending = filters.sort == "-created_at"
    scope = (orders.c.restaurant_id == restaurant_id, *_conditions(filters))
    if page.cursor is None and not page.skip:
        return _ordered(select(orders).where(*scope), orders.c, descending).limit(page.limit + 1)
    keys = select(orders.c.order_id, orders.c.created_at).where(*scope)
    if page.cursor is not None:
        keys = keys.where(_after(page.cursor, filters.sort))
    slice_ = _ordered(keys, keys.selected_columns, descending).limit(page.limit + 1)
    ids = (slice_.offset(page.skip) if page.skip else slice_).subquery("page")
    joined = select(orders).join(ids, ids.c.order_id == orders.c.order_id)
    return _ordered(joined, ids.c, descending)


def _ordered(query: Select[Any], columns: Any, descending: bool) -> Select[Any]:
    keys = (columns.created_at, columns.order_id)
    return query.order_by(*(key.desc() if descending else key.asc() for key in keys))


def get_order(engine: Engine, restaurant_id: str, order_id: str) -> OrderView | None:
    query = select(orders).where(
        orders.c.order_id == order_id, orders.c.restaurant_id == restaurant_id
    )
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else _order_view(row)


def order_history(
    engine: Engine, restaurant_id: str, order_id: str, page: PageRequest
) -> Page[HistoryEntry] | None:
    """The order's events, oldest first; None if the order has none in this restaurant."""
    scope = (history.c.restaurant_id == restaurant_id, history.c.order_id == order_id)
    query = select(history).where(*scope).order_by(history.c.version).limit(page.limit + 1)
    if page.cursor is not None:
        query = query.where(history.c.version > _after_version(page.cursor))
    else:
        query = query.offset(page.skip)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(history).where(*scope))
        count = int(total.scalar_one())
        rows = conn.execute(query).all() if count else []
    if not count:
        return None
    return build_page(
        [_history_entry(row) for row in rows], page, count, key_of=lambda item: [item.version]
    )


# -- helpers ----------------------------------------------------------------------------------


def _conditions(filters: OrderFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.statuses:
        conditions.append(orders.c.status.in_(sorted(set(filters.statuses))))
    if filters.table_id is not None:
        conditions.append(orders.c.table_id == filters.table_id)
    if filters.created_from is not None:
        conditions.append(orders.c.created_at >= _naive_utc(filters.created_from))
    if filters.created_to is not None:
        conditions.append(orders.c.created_at < _naive_utc(filters.created_to))
    return conditions


def _total(
    conn: Connection, restaurant_id: str, filters: OrderFilters, page: PageRequest
) -> int | None:
    """From the counters when only statuses filter (O(1)); else COUNT(*) over an index range,
    skipped on keyset pages (the envelope allows a null total there)."""
    if filters.table_id is None and filters.created_from is None and filters.created_to is None:
        count = order_counters.c["count"]
        statuses = filters.statuses or ORDER_STATUSES
        query = select(func.coalesce(func.sum(count), 0)).where(
            order_counters.c.restaurant_id == restaurant_id,
            order_counters.c.status.in_(sorted(set(statuses))),
        )
        return int(conn.execute(query).scalar_one())
    if page.cursor is not None:
        return None
    query = (
        select(func.count())
        .select_from(orders)
        .where(orders.c.restaurant_id == restaurant_id, *_conditions(filters))
    )
    return int(conn.execute(query).scalar_one())


def _after(cursor: Sequence[Any], sort: OrderSort) -> ColumnElement[bool]:
    try:
        cursor_sort, created_raw, last_id = cursor
        created = _naive_utc(datetime.fromisoformat(created_raw))
    except (TypeError, ValueError, OverflowError) as exc:  # year 1 or 9999 with an offset
        raise InvalidCursor("cursor is not valid") from exc
    if cursor_sort != sort or not isinstance(last_id, str):
        raise InvalidCursor("cursor is not valid for this sort order")
    created_at, order_id = orders.c.created_at, orders.c.order_id
    if sort == "-created_at":
        return or_(created_at < created, and_(created_at == created, order_id < last_id))
    return or_(created_at > created, and_(created_at == created, order_id > last_id))


def _after_version(cursor: Sequence[Any]) -> int:
    if len(cursor) != 1 or type(cursor[0]) is not int:
        raise InvalidCursor("cursor is not valid")
    version: int = cursor[0]
    return version


def _order_view(row: Row[Any]) -> OrderView:
    return OrderView(
        id=row.order_id,
        status=row.status,
        table_id=row.table_id,
        customer_name=row.customer_name,
        notes=row.notes,
        lines=[OrderLineView.model_validate(line) for line in row.lines],
        total_cents=row.total_cents,
        tip_cents=row.tip_cents,
        paid_cents=row.paid_cents,
        payment_method=row.payment_method,
        created_at=_as_utc(row.created_at),
        updated_at=_as_utc(row.updated_at),
        started_at=_maybe_utc(row.started_at),
        ready_at=_maybe_utc(row.ready_at),
        served_at=_maybe_utc(row.served_at),
        paid_at=_maybe_utc(row.paid_at),
        cancelled_at=_maybe_utc(row.cancelled_at),
        cancel_reason=row.cancel_reason,
        version=row.version,
    )


def order_document(row: Row[Any]) -> dict[str, Any]:
    """An order as ``OrderView`` serialises it (same keys, same order); times are naive UTC
    or aware, and orjson writes both as RFC 3339 with ``Z`` (OPT_NAIVE_UTC | OPT_UTC_Z)."""
    return {
        "id": row.order_id,
        "status": row.status,
        "table_id": row.table_id,
        "customer_name": row.customer_name,
        "notes": row.notes,
        "lines": [
            {
                "line_id": line["line_id"],
                "menu_item_id": line["menu_item_id"],
                "name": line["name"],
                "unit_price_cents": line["unit_price_cents"],
                "quantity": line["quantity"],
                "notes": line["notes"],
                "line_total_cents": line["line_total_cents"],
            }
            for line in row.lines
        ],
        "total_cents": row.total_cents,
        "tip_cents": row.tip_cents,
        "paid_cents": row.paid_cents,
        "payment_method": row.payment_method,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "started_at": row.started_at,
        "ready_at": row.ready_at,
        "served_at": row.served_at,
        "paid_at": row.paid_at,
        "cancelled_at": row.cancelled_at,
        "cancel_reason": row.cancel_reason,
        "version": row.version,
    }


def _history_entry(row: Row[Any]) -> HistoryEntry:
    return HistoryEntry(
        version=row.version,
        position=row.seq,
        type=row.type,
        data=row.data,
        actor=row.actor,
        request_id=row.request_id,
        recorded_at=_as_utc(row.recorded_at),
    )


def _naive_utc(moment: datetime) -> datetime:
    """DATETIME columns hold naive UTC; a naive argument is taken as UTC already."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _maybe_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else _as_utc(moment)
