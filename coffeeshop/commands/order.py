"""The Order aggregate: lines, totals and the status machine.

pending -> preparing -> ready -> served -> paid; cancelled from any state before paid.
Lines change only while pending or preparing. Totals are derived here, never taken
from the client.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from coffeeshop.commands.errors import InvalidState, NotFound, RuleViolation
from coffeeshop.commands.menu_item import MenuItem
from coffeeshop.events.orders import (
    OrderCancelled,
    OrderItemAdded,
    OrderItemRemoved,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    OrderPreparationStarted,
    OrderReady,
    OrderServed,
    PaymentMethod,
)
from coffeeshop.events.registry import DomainEvent


class Status(StrEnum):
    NONE = "none"
    PENDING = "pending"
    PREPARING = "preparing"
    READY = "ready"
    SERVED = "served"
    PAID = "paid"
    CANCELLED = "cancelled"


EDITABLE = frozenset({Status.PENDING, Status.PREPARING})
CLOSED = frozenset({Status.PAID, Status.CANCELLED})


@dataclass(frozen=True)
class Order:
    order_id: str = ""
    status: Status = Status.NONE
    lines: tuple[OrderLine, ...] = ()
    tip_cents: int = 0
    paid_cents: int = 0

    @property
    def total_cents(self) -> int:
        return sum(line.unit_price_cents * line.quantity for line in self.lines)


# -- commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineRequest:
    """A line to add; ``menu_item`` is the item's current state, loaded from its stream."""

    line_id: str
    menu_item: MenuItem
    quantity: int
    notes: str = ""


@dataclass(frozen=True)
class PlaceOrder:
    order_id: str
    lines: tuple[LineRequest, ...]
    table_id: str | None = None
    customer_name: str | None = None
    notes: str = ""


@dataclass(frozen=True)
class AddItem:
    line: LineRequest


@dataclass(frozen=True)
class RemoveItem:
    line_id: str


@dataclass(frozen=True)
class StartPreparation:
    pass


@dataclass(frozen=True)
class MarkReady:
    pass


@dataclass(frozen=True)
class Serve:
    pass


@dataclass(frozen=True)
class Pay:
    method: PaymentMethod
    amount_cents: int
    tip_cents: int = 0


@dataclass(frozen=True)
class Cancel:
    reason: str = field(default="")


OrderCommand = (
    PlaceOrder | AddItem | RemoveItem | StartPreparation | MarkReady | Serve | Pay | Cancel
)

MAX_QUANTITY = 99
_TRANSITIONS: dict[type, tuple[Status, Status]] = {
    StartPreparation: (Status.PENDING, Status.PREPARING),
    MarkReady: (Status.PREPARING, Status.READY),
    Serve: (Status.READY, Status.SERVED),
}


def decide(command: OrderCommand, state: Order, now: datetime) -> list[DomainEvent]:
    if isinstance(command, PlaceOrder):
        return [_place(command, state, now)]
    if state.status is Status.NONE:
        raise NotFound("order not found")
    if state.status in CLOSED:
        raise InvalidState(f"the order is {state.status.value}; it can no longer change")
    match command:
        case AddItem(line=request):
            return [_add(request, state)]
        case RemoveItem(line_id=line_id):
            return [_remove(line_id, state)]
        case StartPreparation() | MarkReady() | Serve():
            return [_transition(command, state, now)]
        case Pay():
            return [_pay(command, state, now)]
        case Cancel(reason=reason):
            return [OrderCancelled(reason=reason, at=now)]
    raise TypeError(f"unknown command {command!r}")  # pragma: no cover


def _place(command: PlaceOrder, state: Order, now: datetime) -> DomainEvent:
    if state.status is not Status.NONE:
        raise InvalidState("the order already exists")
    if not command.lines:
        raise RuleViolation("an order needs at least one item")
    if len({line.line_id for line in command.lines}) != len(command.lines):
        raise RuleViolation("line ids must be unique within an order")
    return OrderPlaced(
        order_id=command.order_id,
        table_id=command.table_id,
        customer_name=command.customer_name,
        notes=command.notes,
        lines=tuple(_line(request) for request in command.lines),
        placed_at=now,
    )


def _add(request: LineRequest, state: Order) -> DomainEvent:
    _require_editable(state, "add items to")
    if any(line.line_id == request.line_id for line in state.lines):
        raise InvalidState(f"the order already has a line {request.line_id}")
    return OrderItemAdded(line=_line(request))


def _remove(line_id: str, state: Order) -> DomainEvent:
    _require_editable(state, "remove items from")
    if all(line.line_id != line_id for line in state.lines):
        raise NotFound("order line not found")
    if len(state.lines) == 1:
        raise InvalidState("an order keeps at least one item; cancel it instead")
    return OrderItemRemoved(line_id=line_id)


def _line(request: LineRequest) -> OrderLine:
    item = request.menu_item
    if not item.exists:
        raise NotFound(f"menu item {item.menu_item_id} not found")
    if item.archived:
        raise InvalidState(f"menu item {item.name!r} is no longer on the menu")
    if not item.is_available:
        raise InvalidState(f"menu item {item.name!r} is not available")
    if not 1 <= request.quantity <= MAX_QUANTITY:
        raise RuleViolation(f"quantity must be between 1 and {MAX_QUANTITY}")
    return OrderLine(
        line_id=request.line_id,
        menu_item_id=item.menu_item_id,
        name=item.name,
        unit_price_cents=item.price_cents,
        quantity=request.quantity,
        notes=request.notes,
    )


def _require_editable(state: Order, action: str) -> None:
    if state.status not in EDITABLE:
        raise InvalidState(f"cannot {action} an order that is {state.status.value}")


def _transition(
    command: StartPreparation | MarkReady | Serve, state: Order, now: datetime
) -> DomainEvent:
    source, target = _TRANSITIONS[type(command)]
    if state.status is not source:
        raise InvalidState(f"an order that is {state.status.value} cannot become {target.value}")
    match command:
        case StartPreparation():
            return OrderPreparationStarted(at=now)
        case MarkReady():
            return OrderReady(at=now)
    return OrderServed(at=now)


def _pay(command: Pay, state: Order, now: datetime) -> DomainEvent:
    if state.status is not Status.SERVED:
        raise InvalidState(f"an order that is {state.status.value} cannot be paid yet")
    if command.tip_cents < 0:
        raise RuleViolation("tip_cents cannot be negative")
    if command.amount_cents != state.total_cents:
        raise RuleViolation(
            f"amount_cents must equal the order total of {state.total_cents} "
            "(put any tip in tip_cents)"
        )
    return OrderPaid(
        method=command.method,
        amount_cents=command.amount_cents,
        tip_cents=command.tip_cents,
        at=now,
    )


def evolve(state: Order, event: DomainEvent) -> Order:
    match event:
        case OrderPlaced():
            return Order(order_id=event.order_id, status=Status.PENDING, lines=event.lines)
        case OrderItemAdded():
            return replace(state, lines=(*state.lines, event.line))
        case OrderItemRemoved():
            return replace(
                state, lines=tuple(line for line in state.lines if line.line_id != event.line_id)
            )
        case OrderPreparationStarted():
            return replace(state, status=Status.PREPARING)
        case OrderReady():
            return replace(state, status=Status.READY)
        case OrderServed():
            return replace(state, status=Status.SERVED)
        case OrderPaid():
            return replace(
                state, status=Status.PAID, tip_cents=event.tip_cents, paid_cents=event.amount_cents
            )
        case OrderCancelled():
            return replace(state, status=Status.CANCELLED)
    return state
