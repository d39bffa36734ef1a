"""Order commands (write side): what POS terminals send through an order's life."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from coffeeshop.api.commands import (
    CommandAccepted,
    OrderContext,
    OrderLineAdded,
    command_response,
)
from coffeeshop.api.deps import ContainerDep, limit_orders
from coffeeshop.api.errors import RATE_LIMITED
from coffeeshop.commands.models import (
    CancellationCreate,
    OrderCreate,
    OrderItemCreate,
    PaymentCreate,
)

router = APIRouter(prefix="/api/v1/orders", tags=["order commands"])
ACCEPTED = {"model": CommandAccepted}


@router.post(
    "",
    status_code=201,
    responses={201: ACCEPTED, 429: RATE_LIMITED},
    dependencies=[Depends(limit_orders)],
)
def place_order(body: OrderCreate, ctx: OrderContext, c: ContainerDep) -> JSONResponse:
    """Place an order; prices are taken from the menu at this moment."""
    return command_response(c.orders.place(ctx, body))


@router.post("/{order_id}/items", responses={200: {"model": OrderLineAdded}})
def add_item(
    order_id: UUID, body: OrderItemCreate, ctx: OrderContext, c: ContainerDep
) -> JSONResponse:
    """Add a line to a pending or preparing order."""
    return command_response(c.orders.add_item(ctx, str(order_id), body))


@router.delete("/{order_id}/items/{line_id}", responses={200: ACCEPTED})
def remove_item(order_id: UUID, line_id: UUID, ctx: OrderContext, c: ContainerDep) -> JSONResponse:
    """Remove a line from a pending or preparing order."""
    return command_response(c.orders.remove_item(ctx, str(order_id), str(line_id)))


@router.post("/{order_id}/start", responses={200: ACCEPTED})
def start(order_id: UUID, ctx: OrderContext, c: ContainerDep) -> JSONResponse:
    """The kitchen starts preparing the order."""
    return command_response(c.orders.start(ctx, str(order_id)))


@router.post("/{order_id}/ready", responses={200: ACCEPTED})
def ready(order_id: UUID, ctx: OrderContext, c: ContainerDep) -> JSONResponse:
    """The order is ready to serve."""
    return command_response(c.orders.mark_ready(ctx, str(order_id)))


@router.post("/{order_id}/serve", responses={200: ACCEPTED})
def serve(order_id: UUID, ctx: OrderContext, c: ContainerDep) -> JSONResponse:
    """The order was served."""
    return command_response(c.orders.serve(ctx, str(order_id)))


@router.post("/{order_id}/pay", responses={200: ACCEPTED})
def pay(order_id: UUID, body: PaymentCreate, ctx: OrderContext, c: ContainerDep) -> JSONResponse:
    """Take payment: amount_cents must equal the order total; the tip comes on top."""
    return command_response(c.orders.pay(ctx, str(order_id), body))


@router.post("/{order_id}/cancel", responses={200: ACCEPTED})
def cancel(
    order_id: UUID, body: CancellationCreate, ctx: OrderContext, c: ContainerDep
) -> JSONResponse:
    """Cancel an order that is not paid yet."""
    return command_response(c.orders.cancel(ctx, str(order_id), body))
