"""Menu commands (write side): categories and items. Managers and owners only."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from coffeeshop.api.commands import CommandAccepted, MenuContext, execute
from coffeeshop.api.deps import ContainerDep
from coffeeshop.commands.models import (
    AvailabilityUpdate,
    CategoryCreate,
    CategoryUpdate,
    MenuItemCreate,
    MenuItemUpdate,
)

router = APIRouter(prefix="/api/v1/menu", tags=["menu commands"])
ACCEPTED = {"model": CommandAccepted}


@router.post("/categories", status_code=201, responses={201: ACCEPTED})
async def create_category(body: CategoryCreate, ctx: MenuContext, c: ContainerDep) -> JSONResponse:
    """Create a menu category."""
    return await execute(c.menu.create_category, ctx, body)


@router.patch("/categories/{category_id}", responses={200: ACCEPTED})
async def update_category(
    category_id: UUID, body: CategoryUpdate, ctx: MenuContext, c: ContainerDep
) -> JSONResponse:
    """Rename or reorder a category."""
    return await execute(c.menu.update_category, ctx, str(category_id), body)


@router.delete("/categories/{category_id}", responses={200: ACCEPTED})
async def remove_category(category_id: UUID, ctx: MenuContext, c: ContainerDep) -> JSONResponse:
    """Remove a category that holds no active items (409 otherwise)."""
    return await execute(c.menu.remove_category, ctx, str(category_id))


@router.post("/items", status_code=201, responses={201: ACCEPTED})
async def add_item(body: MenuItemCreate, ctx: MenuContext, c: ContainerDep) -> JSONResponse:
    """Add an item to a category of the menu."""
    return await execute(c.menu.add_item, ctx, body)


@router.patch("/items/{item_id}", responses={200: ACCEPTED})
async def update_item(
    item_id: UUID, body: MenuItemUpdate, ctx: MenuContext, c: ContainerDep
) -> JSONResponse:
    """Change an item's name, description, category or price."""
    return await execute(c.menu.update_item, ctx, str(item_id), body)


@router.post("/items/{item_id}/availability", responses={200: ACCEPTED})
async def set_availability(
    item_id: UUID, body: AvailabilityUpdate, ctx: MenuContext, c: ContainerDep
) -> JSONResponse:
    """Mark an item sold out or available again."""
    return await execute(c.menu.set_availability, ctx, str(item_id), body)


@router.delete("/items/{item_id}", responses={200: ACCEPTED})
async def archive_item(item_id: UUID, ctx: MenuContext, c: ContainerDep) -> JSONResponse:
    """Archive an item: it leaves the menu; past orders keep it."""
    return await execute(c.menu.archive_item, ctx, str(item_id))
