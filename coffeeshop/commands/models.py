"""Command request models: the bodies POS terminals and back offices send."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from coffeeshop.commands.validation import Name, Notes, PersonName, Reason
from coffeeshop.events.orders import PaymentMethod

PriceCents = Annotated[int, Field(ge=0, le=10_000_000)]
Quantity = Annotated[int, Field(ge=1, le=99)]
SortOrder = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
MoneyCents = Annotated[int, Field(ge=0, le=1_000_000_000)]


class CommandModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryCreate(CommandModel):
    name: Name
    sort_order: SortOrder = 0


class CategoryUpdate(CommandModel):
    name: Name | None = None
    sort_order: SortOrder | None = None


class MenuItemCreate(CommandModel):
    name: Name
    description: Notes = ""
    category_id: UUID
    price_cents: PriceCents
    is_available: bool = True


class MenuItemUpdate(CommandModel):
    name: Name | None = None
    description: Notes | None = None
    category_id: UUID | None = None
    price_cents: PriceCents | None = None


class AvailabilityUpdate(CommandModel):
    is_available: bool


class OrderItemCreate(CommandModel):
    menu_item_id: UUID
    quantity: Quantity
    notes: Notes = ""


class OrderCreate(CommandModel):
    table_id: UUID | None = None
    customer_name: PersonName | None = None
    notes: Notes = ""
    items: list[OrderItemCreate] = Field(min_length=1, max_length=100)


class PaymentCreate(CommandModel):
    method: PaymentMethod
    amount_cents: MoneyCents
    tip_cents: MoneyCents = 0


class CancellationCreate(CommandModel):
    reason: Reason
