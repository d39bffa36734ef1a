"""Order queries (read side): the orders read model and each order's audit trail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response

from coffeeshop.api.deps import ContainerDep, CurrentPrincipal, PageDep
from coffeeshop.api.errors import ResourceNotFound, Unprocessable
from coffeeshop.api.reads import STALE, fresh_to
from coffeeshop.projections import order_history as history_projection
from coffeeshop.projections import orders as orders_projection
from coffeeshop.queries import orders as queries
from coffeeshop.queries.orders import HistoryEntry, OrderFilters, OrderSort, OrderStatus, OrderView
from coffeeshop.queries.pagination import InvalidCursor, Page

router = APIRouter(prefix="/api/v1/orders", tags=["order queries"])
FreshOrders = Annotated[None, Depends(fresh_to(orders_projection.NAME))]
FreshHistory = Annotated[None, Depends(fresh_to(history_projection.NAME))]


@router.get("", response_model=Page[OrderView])
def list_orders(
    *,
    caller: CurrentPrincipal,
    container: ContainerDep,
    page: PageDep,
    response: Response,
    status: Annotated[
        list[OrderStatus] | None, Query(description="Only these statuses (repeatable)")
    ] = None,
    table_id: UUID | None = None,
    created_from: Annotated[
        datetime | None, Query(description="Placed at or after (RFC 3339)")
    ] = None,
    created_to: Annotated[datetime | None, Query(description="Placed before (RFC 3339)")] = None,
    sort: Annotated[OrderSort, Query(description="created_at: oldest first")] = "-created_at",
    _fresh: FreshOrders,
) -> Response:
    """The restaurant's orders, newest first unless sort=created_at."""
    filters = OrderFilters(
        statuses=tuple(status or ()),
        table_id=str(table_id) if table_id else None,
        created_from=_utc(created_from, "created_from"),
        created_to=_utc(created_to, "created_to"),
        sort=sort,
    )
    if filters.created_from and filters.created_to and filters.created_from > filters.created_to:
        raise Unprocessable(
            "created_from is after created_to",
            errors=[{"loc": ["query", "created_from"], "msg": "must not be after created_to"}],
        )
    try:
        body = queries.list_orders_json(container.reads, caller.restaurant_id, filters, page)
    except InvalidCursor as exc:
        raise _bad_cursor(exc) from exc
    stale = response.headers.get(STALE)
    return Response(body, media_type="application/json", headers={STALE: stale} if stale else None)


@router.get("/{order_id}")
def get_order(
    order_id: UUID,
    *,
    caller: CurrentPrincipal,
    container: ContainerDep,
    response: Response,
    _fresh: FreshOrders,
) -> OrderView:
    """One order with its lines, totals and timestamps; the ETag is its version."""
    order = queries.get_order(container.reads, caller.restaurant_id, str(order_id))
    if order is None:
        raise _not_found(response)
    response.headers["ETag"] = f'"{order.version}"'
    return order


@router.get("/{order_id}/history")
def get_order_history(
    order_id: UUID,
    *,
    caller: CurrentPrincipal,
    container: ContainerDep,
    page: PageDep,
    response: Response,
    _fresh: FreshHistory,
) -> Page[HistoryEntry]:
    """The order's events, oldest first, with who sent each and when (audit trail)."""
    try:
        history = queries.order_history(container.reads, caller.restaurant_id, str(order_id), page)
    except InvalidCursor as exc:
        raise _bad_cursor(exc) from exc
    if history is None:
        raise _not_found(response)
    return history


def _utc(moment: datetime | None, name: str) -> datetime | None:
    """Times are RFC 3339; one without an offset is taken as UTC."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (OverflowError, ValueError) as exc:  # year 1 or 9999 with an offset
        raise Unprocessable(
            f"{name} is out of range", errors=[{"loc": ["query", name], "msg": "out of range"}]
        ) from exc


def _bad_cursor(exc: InvalidCursor) -> Unprocessable:
    return Unprocessable(str(exc), errors=[{"loc": ["query", "cursor"], "msg": str(exc)}])


def _not_found(response: Response) -> ResourceNotFound:
    """A stale projection may not show an order yet: say so on the 404 too."""
    stale = {STALE: "true"} if response.headers.get(STALE) else None
    return ResourceNotFound("order not found", headers=stale)
