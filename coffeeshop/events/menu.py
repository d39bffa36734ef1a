"""Events of the menu: categories and menu items (two aggregates, two stream types)."""

from __future__ import annotations

from coffeeshop.events.registry import DomainEvent, registry

CATEGORY_STREAM = "category"
MENU_ITEM_STREAM = "menu_item"


@registry.register
class CategoryCreated(DomainEvent):
    event_type = "CategoryCreated"
    category_id: str
    name: str
    sort_order: int


@registry.register
class CategoryRenamed(DomainEvent):
    event_type = "CategoryRenamed"
    name: str


@registry.register
class CategoryReordered(DomainEvent):
    event_type = "CategoryReordered"
    sort_order: int


@registry.register
class CategoryItemAttached(DomainEvent):
    """A menu item now belongs to the category (keeps "no removal while it has items" exact)."""

    event_type = "CategoryItemAttached"
    menu_item_id: str


@registry.register
class CategoryItemDetached(DomainEvent):
    event_type = "CategoryItemDetached"
    menu_item_id: str


@registry.register
class CategoryRemoved(DomainEvent):
    event_type = "CategoryRemoved"


@registry.register
class MenuItemAdded(DomainEvent):
    event_type = "MenuItemAdded"
    menu_item_id: str
    category_id: str
    name: str
    description: str
    price_cents: int
    is_available: bool


@registry.register
class MenuItemRenamed(DomainEvent):
    event_type = "MenuItemRenamed"
    name: str


@registry.register
class MenuItemDescriptionChanged(DomainEvent):
    event_type = "MenuItemDescriptionChanged"
    description: str


@registry.register
class MenuItemPriceChanged(DomainEvent):
    event_type = "MenuItemPriceChanged"
    price_cents: int


@registry.register
class MenuItemMoved(DomainEvent):
    event_type = "MenuItemMoved"
    category_id: str


@registry.register
class MenuItemAvailabilityChanged(DomainEvent):
    event_type = "MenuItemAvailabilityChanged"
    is_available: bool


@registry.register
class MenuItemArchived(DomainEvent):
    event_type = "MenuItemArchived"
