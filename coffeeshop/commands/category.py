"""The Category aggregate: a named, ordered group of menu items."""

from __future__ import annotations

from dataclasses import dataclass, replace

from coffeeshop.commands.errors import InvalidState, NotFound
from coffeeshop.events.menu import (
    CategoryCreated,
    CategoryItemAttached,
    CategoryItemDetached,
    CategoryRemoved,
    CategoryRenamed,
    CategoryReordered,
)
from coffeeshop.events.registry import DomainEvent


@dataclass(frozen=True)
class Category:
    category_id: str = ""
    name: str = ""
    sort_order: int = 0
    item_ids: frozenset[str] = frozenset()
    exists: bool = False
    removed: bool = False


# -- commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateCategory:
    category_id: str
    name: str
    sort_order: int


@dataclass(frozen=True)
class UpdateCategory:
    name: str | None = None
    sort_order: int | None = None


@dataclass(frozen=True)
class AttachItem:
    menu_item_id: str


@dataclass(frozen=True)
class DetachItem:
    menu_item_id: str


@dataclass(frozen=True)
class RemoveCategory:
    pass


CategoryCommand = CreateCategory | UpdateCategory | AttachItem | DetachItem | RemoveCategory


def decide(command: CategoryCommand, state: Category) -> list[DomainEvent]:
    if isinstance(command, CreateCategory):
        if state.exists:
            raise InvalidState("the category already exists")
        return [
            CategoryCreated(
                category_id=command.category_id, name=command.name, sort_order=command.sort_order
            )
        ]
    if not state.exists or state.removed:
        raise NotFound("category not found")
    match command:
        case UpdateCategory(name=name, sort_order=sort_order):
            changes: list[DomainEvent] = []
            if name is not None and name != state.name:
                changes.append(CategoryRenamed(name=name))
            if sort_order is not None and sort_order != state.sort_order:
                changes.append(CategoryReordered(sort_order=sort_order))
            return changes
        case AttachItem(menu_item_id=item_id):
            return [] if item_id in state.item_ids else [CategoryItemAttached(menu_item_id=item_id)]
        case DetachItem(menu_item_id=item_id):
            return [CategoryItemDetached(menu_item_id=item_id)] if item_id in state.item_ids else []
        case RemoveCategory():
            if state.item_ids:
                raise InvalidState(
                    f"the category still holds {len(state.item_ids)} active item(s); "
                    "archive or move them first"
                )
            return [CategoryRemoved()]
    raise TypeError(f"unknown command {command!r}")  # pragma: no cover


def evolve(state: Category, event: DomainEvent) -> Category:
    match event:
        case CategoryCreated():
            return Category(
                category_id=event.category_id,
                name=event.name,
                sort_order=event.sort_order,
                exists=True,
            )
        case CategoryRenamed():
            return replace(state, name=event.name)
        case CategoryReordered():
            return replace(state, sort_order=event.sort_order)
        case CategoryItemAttached():
            return replace(state, item_ids=state.item_ids | {event.menu_item_id})
        case CategoryItemDetached():
            return replace(state, item_ids=state.item_ids - {event.menu_item_id})
        case CategoryRemoved():
            return replace(state, removed=True)
    return state
