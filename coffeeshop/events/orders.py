"""Events of the Order aggregate."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from coffeeshop.events.registry import DomainEvent, registry

ORDER_STREAM = "order"
PaymentMethod = Literal["cash", "card", "other"]


class OrderLine(BaseModel):
    """A line as ordered: name and unit price are captured from the menu at that moment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    line_id: str
    menu_item_id: str
    name: str
    unit_price_cents: int
    quantity: int
    notes: str = ""


@registry.register
class OrderPlaced(DomainEvent):
    event_type = "OrderPlaced"
    order_id: str
    table_id: str | None
    customer_name: str | None
    notes: str
    lines: tuple[OrderLine, ...]
    placed_at: datetime


@registry.register
class OrderItemAdded(DomainEvent):
    event_type = "OrderItemAdded"
    line: OrderLine


@registry.register
class OrderItemRemoved(DomainEvent):
    event_type = "OrderItemRemoved"
    line_id: str


@registry.register
class OrderPreparationStarted(DomainEvent):
    event_type = "OrderPreparationStarted"
    at: datetime


@registry.register
class OrderReady(DomainEvent):
    event_type = "OrderReady"
    at: datetime


@registry.register
class OrderServed(DomainEvent):
    event_type = "OrderServed"
    at: datetime


@registry.register
class OrderPaid(DomainEvent):
    event_type = "OrderPaid"
    method: PaymentMethod
    amount_cents: int
    tip_cents: int
    at: datetime


@registry.register
class OrderCancelled(DomainEvent):
    event_type = "OrderCancelled"
    reason: str
    at: datetime
