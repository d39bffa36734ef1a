"""The MenuItem aggregate: something a restaurant sells, its price and availability."""

from __future__ import annotations

from dataclasses import dataclass, replace

from coffeeshop.commands.errors import InvalidState, NotFound
from coffeeshop.events.menu import (
    MenuItemAdded,
    MenuItemArchived,
    MenuItemAvailabilityChanged,
    MenuItemDescriptionChanged,
    MenuItemMoved,
    MenuItemPriceChanged,
    MenuItemRenamed,
)
from coffeeshop.events.registry import DomainEvent


@dataclass(frozen=True)
class MenuItem:
    menu_item_id: str = ""
    category_id: str = ""
    name: str = ""
    description: str = ""
    price_cents: int = 0
    is_available: bool = False
    exists: bool = False
    archived: bool = False

    @property
    def orderable(self) -> bool:
        return self.exists and self.is_available and not self.archived


# -- commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AddMenuItem:
    menu_item_id: str
    category_id: str
    name: str
    description: str
    price_cents: int
    is_available: bool


@dataclass(frozen=True)
class UpdateMenuItem:
    name: str | None = None
    description: str | None = None
    category_id: str | None = None
    price_cents: int | None = None


@dataclass(frozen=True)
class SetAvailability:
    is_available: bool


@dataclass(frozen=True)
class ArchiveMenuItem:
    pass


MenuItemCommand = AddMenuItem | UpdateMenuItem | SetAvailability | ArchiveMenuItem


def decide(command: MenuItemCommand, state: MenuItem) -> list[DomainEvent]:
    if isinstance(command, AddMenuItem):
        if state.exists:
            raise InvalidState("the menu item already exists")
        return [
            MenuItemAdded(
                menu_item_id=command.menu_item_id,
                category_id=command.category_id,
                name=command.name,
                description=command.description,
                price_cents=command.price_cents,
                is_available=command.is_available,
            )
        ]
    if not state.exists:
        raise NotFound("menu item not found")
    if state.archived:
        raise InvalidState("the menu item is archived")
    match command:
        case UpdateMenuItem():
            return _changes(command, state)
        case SetAvailability(is_available=available):
            if available == state.is_available:
                return []
            return [MenuItemAvailabilityChanged(is_available=available)]
        case ArchiveMenuItem():
            return [MenuItemArchived()]
    raise TypeError(f"unknown command {command!r}")  # pragma: no cover


def _changes(command: UpdateMenuItem, state: MenuItem) -> list[DomainEvent]:
    events: list[DomainEvent] = []
    if command.name is not None and command.name != state.name:
        events.append(MenuItemRenamed(name=command.name))
    if command.description is not None and command.description != state.description:
        events.append(MenuItemDescriptionChanged(description=command.description))
    if command.price_cents is not None and command.price_cents != state.price_cents:
        events.append(MenuItemPriceChanged(price_cents=command.price_cents))
    if command.category_id is not None and command.category_id != state.category_id:
        events.append(MenuItemMoved(category_id=command.category_id))
    return events


def evolve(state: MenuItem, event: DomainEvent) -> MenuItem:
    match event:
        case MenuItemAdded():
            return MenuItem(
                menu_item_id=event.menu_item_id,
                category_id=event.category_id,
                name=event.name,
                description=event.description,
                price_cents=event.price_cents,
                is_available=event.is_available,
                exists=True,
            )
        case MenuItemRenamed():
            return replace(state, name=event.name)
        case MenuItemDescriptionChanged():
            return replace(state, description=event.description)
        case MenuItemPriceChanged():
            return replace(state, price_cents=event.price_cents)
        case MenuItemMoved():
            return replace(state, category_id=event.category_id)
        case MenuItemAvailabilityChanged():
            return replace(state, is_available=event.is_available)
        case MenuItemArchived():
            return replace(state, archived=True)
    return state
