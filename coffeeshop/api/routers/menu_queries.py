"""Menu queries (read side): the whole menu for POS screens, categories and items.

Any authenticated caller of the restaurant may read its menu. Every route accepts
``min_position`` (read-your-writes against the ``menu`` projection).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar
from uuid import UUID

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Response

from coffeeshop.api.deps import ContainerDep, CurrentPrincipal, PageDep
from coffeeshop.api.errors import ResourceNotFound, Unprocessable
from coffeeshop.api.reads import STALE, fresh_to
from coffeeshop.queries.menu import (
    CategoryView,
    ItemFilters,
    Menu,
    MenuItemView,
    cached_menu,
    current_menu,
    get_item,
    list_categories,
    list_items,
)
from coffeeshop.queries.pagination import InvalidCursor, Page

router = APIRouter(prefix="/api/v1")
PROJECTION = "menu"
Fresh = Annotated[None, Depends(fresh_to(PROJECTION))]
T = TypeVar("T")


@router.get(
    "/menu",
    tags=["menu"],
    response_class=Response,
    responses={200: {"model": Menu, "content": {"application/json": {}}}},
)
async def read_menu(
    caller: CurrentPrincipal,
    container: ContainerDep,
    response: Response,
    _fresh: Fresh,
) -> Response:
    """The whole current menu: categories by sort order, each with its items (sold-out ones
    too, with ``is_available: false``); archived items and removed categories are gone."""
    body = await cached_menu(container.cache, caller.restaurant_id)
    if body is None:  # the tables' turn, in the thread pool
        body = await to_thread.run_sync(
            current_menu, container.reads, container.cache, caller.restaurant_id
        )
    stale = response.headers.get(STALE)
    headers = {STALE: stale} if stale else None
    return Response(content=body, media_type="application/json", headers=headers)


@router.get("/menu/categories", tags=["menu"])
def read_categories(
    caller: CurrentPrincipal,
    container: ContainerDep,
    page: PageDep,
    response: Response,
    _fresh: Fresh,
) -> Page[CategoryView]:
    """The restaurant's categories by sort order, then name."""
    return _paged(lambda: list_categories(container.reads, caller.restaurant_id, page))


@router.get("/menu/items", tags=["menu"])
def read_items(
    *,
    caller: CurrentPrincipal,
    container: ContainerDep,
    page: PageDep,
    response: Response,
    category_id: UUID | None = None,
    is_available: bool | None = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Name contains")
    ] = None,
    _fresh: Fresh,
) -> Page[MenuItemView]:
    """The restaurant's active menu items by name; filter by category, availability or name."""
    filters = ItemFilters(
        category_id=str(category_id) if category_id else None, is_available=is_available, q=q
    )
    return _paged(lambda: list_items(container.reads, caller.restaurant_id, filters, page))


@router.get("/menu/items/{item_id}", tags=["menu"])
def read_item(
    item_id: UUID,
    caller: CurrentPrincipal,
    container: ContainerDep,
    response: Response,
    _fresh: Fresh,
) -> MenuItemView:
    """One menu item, with ``ETag: "<version>"``; archived items are not found."""
    item = get_item(container.reads, caller.restaurant_id, str(item_id))
    if item is None:
        raise ResourceNotFound("Menu item not found")
    response.headers["ETag"] = f'"{item.version}"'
    return item


def _paged(read: Callable[[], Page[T]]) -> Page[T]:
    try:
        return read()
    except InvalidCursor as exc:
        raise Unprocessable(
            str(exc), errors=[{"loc": ["query", "cursor"], "msg": str(exc)}]
        ) from exc
