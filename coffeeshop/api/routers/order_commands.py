"""Order commands (write side): what POS terminals send through an order's life."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from coffeeshop.api.commands import (
    CommandAccepted,
    NewOrderContext,
    OrderContext,
    OrderLineAdded,
    execute,
)
from coffeeshop.api.deps import ContainerDep
from coffeeshop.api.errors import RATE_LIMITED
from coffeeshop.commands.models import (
    CancellationCreate,
    OrderCreate,
    OrderItemCreate,
    PaymentCreate,
)

router = APIRouter(prefix="/api/v1/orders", tags=["order commands"])
ACCEPTED = {"model": CommandAccepted}


@router.post("", status_code=201, responses={201: ACCEPTED, 429: RATE_LIMITED})
async def place_order(body: OrderCreate, ctx: NewOrderContext, c: ContainerDep) -> JSONResponse:
    """Place an order; prices are taken from the menu at this moment."""
    return await execute(c.orders.place, ctx, body)


@router.post("/{order_id}/items", responses={200: {"model": OrderLineAdded}})
async def add_item(
    order_id: UUID, body: OrderItemCreate, ctx: OrderContext, c: ContainerDep
) -> JSONResponse:
    """Add a line to a pending or preparing order."""
    return await execute(c.orders.add_item, ctx, str(order_id), body)


@router.delete("/{order_id}/items/{line_id}", responses={200: ACCEPTED})
async def remove_item(
    order_id: UUID, line_id: UUID, ctx: OrderContext, c: ContainerDep
) -> JSONResponse:
    """Remove a line from a pending or preparing order."""
    return await execute(c.orders.remove_item, ctx, str(order_id), str(line_id))


@router.post("/{order_id}/start", responses={200: ACCEPTED})
async def start(order_id: UUID, ctx: OrderContext, c: ContainerDep) -> JSONResponse:
    """The kitchen starts preparing the order."""
    return await execute(c.orders.start, ctx, str(order_id))


@router.post("/{order_id}/ready", responses={200: ACCEPTED})
async def ready(order_id: UUID, ctx: OrderContext, c: ContainerDep) -> JSONResponse:
    """The order is ready to serve."""
    return await execute(c.orders.mark_ready, ctx, str(order_id))


@router.post("/{order_id}/serve", responses={200: ACCEPTED})
async def serve(order_id: UUID, ctx: OrderContext, c: ContainerDep) -> JSONResponse:
    """The order was served."""
    return await execute(c.orders.serve, ctx, str(order_id))


@router.post("/{order_id}/pay", responses={200: ACCEPTED})
async def pay(
    order_id: UUID, body: PaymentCreate, ctx: OrderContext, c: ContainerDep
) -> JSONResponse:
    """Take payment: amount_cents must equal the order total; the tip comes on top."""
    return await execute(c.orders.pay, ctx, str(order_id), body)


@router.post("/{order_id}/cancel", responses={200: ACCEPTED})
async def cancel(
    order_id: UUID, body: CancellationCreate, ctx: OrderContext, c: ContainerDep
) -> JSONResponse:
    """Cancel an order that is not paid yet."""
    return await execute(c.orders.cancel, ctx, str(order_id), body)
