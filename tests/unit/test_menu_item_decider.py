"""MenuItem decider: given past events, when a command, then these events (or this error)."""

from __future__ import annotations

from functools import reduce

import pytest

from coffeeshop.commands.errors import DomainError, InvalidState, NotFound
from coffeeshop.commands.menu_item import (
    AddMenuItem,
    ArchiveMenuItem,
    MenuItem,
    MenuItemCommand,
    SetAvailability,
    UpdateMenuItem,
    decide,
    evolve,
)
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

ADDED = MenuItemAdded(
    menu_item_id="m1",
    category_id="c1",
    name="Latte",
    description="milky",
    price_cents=350,
    is_available=True,
)
ADD = AddMenuItem("m1", "c1", "Latte", "milky", 350, True)


def given(*events: DomainEvent) -> MenuItem:
    return reduce(evolve, events, MenuItem())


def raises(error: type[DomainError], command: MenuItemCommand, state: MenuItem) -> None:
    with pytest.raises(error):
        decide(command, state)


# -- add ---------------------------------------------------------------------------------------


def test_add_a_menu_item():
    assert decide(ADD, given()) == [ADDED]


def test_add_an_unavailable_menu_item():
    command = AddMenuItem("m2", "c1", "Mocha", "", 0, False)
    assert decide(command, given()) == [
        MenuItemAdded(
            menu_item_id="m2",
            category_id="c1",
            name="Mocha",
            description="",
            price_cents=0,
            is_available=False,
        )
    ]


def test_added_state():
    assert given(ADDED) == MenuItem(
        menu_item_id="m1",
        category_id="c1",
        name="Latte",
        description="milky",
        price_cents=350,
        is_available=True,
        exists=True,
        archived=False,
    )
    assert given(ADDED).orderable


def test_adding_twice_is_invalid():
    raises(InvalidState, ADD, given(ADDED))


def test_adding_over_an_archived_item_is_invalid():
    raises(InvalidState, ADD, given(ADDED, MenuItemArchived()))


# -- not found / archived ---------------------------------------------------------------------

COMMANDS_ON_EXISTING: list[MenuItemCommand] = [
    UpdateMenuItem(name="Mocha"),
    UpdateMenuItem(description="x"),
    UpdateMenuItem(price_cents=1),
    UpdateMenuItem(category_id="c2"),
    UpdateMenuItem(),
    SetAvailability(is_available=True),
    SetAvailability(is_available=False),
    ArchiveMenuItem(),
]


@pytest.mark.parametrize("command", COMMANDS_ON_EXISTING, ids=repr)
def test_every_command_on_an_unknown_item_is_not_found(command: MenuItemCommand):
    raises(NotFound, command, given())


@pytest.mark.parametrize("command", COMMANDS_ON_EXISTING, ids=repr)
def test_every_command_on_an_archived_item_is_invalid(command: MenuItemCommand):
    raises(InvalidState, command, given(ADDED, MenuItemArchived()))


@pytest.mark.parametrize("command", COMMANDS_ON_EXISTING, ids=repr)
def test_every_command_on_an_archived_unavailable_item_is_invalid(command: MenuItemCommand):
    state = given(ADDED, MenuItemAvailabilityChanged(is_available=False), MenuItemArchived())
    raises(InvalidState, command, state)


# -- update ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (UpdateMenuItem(name="Mocha"), [MenuItemRenamed(name="Mocha")]),
        (UpdateMenuItem(description=""), [MenuItemDescriptionChanged(description="")]),
        (UpdateMenuItem(price_cents=0), [MenuItemPriceChanged(price_cents=0)]),
        (UpdateMenuItem(category_id="c2"), [MenuItemMoved(category_id="c2")]),
        (
            UpdateMenuItem(name="Mocha", description="choc", category_id="c2", price_cents=400),
            [
                MenuItemRenamed(name="Mocha"),
                MenuItemDescriptionChanged(description="choc"),
                MenuItemPriceChanged(price_cents=400),
                MenuItemMoved(category_id="c2"),
            ],
        ),
        (
            UpdateMenuItem(name="Latte", description="choc", category_id="c1", price_cents=400),
            [MenuItemDescriptionChanged(description="choc"), MenuItemPriceChanged(price_cents=400)],
        ),
    ],
    ids=repr,
)
def test_update_emits_only_the_changed_fields(command: UpdateMenuItem, expected: list[DomainEvent]):
    assert decide(command, given(ADDED)) == expected


@pytest.mark.parametrize(
    "command",
    [
        UpdateMenuItem(),
        UpdateMenuItem(name="Latte"),
        UpdateMenuItem(description="milky"),
        UpdateMenuItem(price_cents=350),
        UpdateMenuItem(category_id="c1"),
        UpdateMenuItem(name="Latte", description="milky", category_id="c1", price_cents=350),
    ],
    ids=repr,
)
def test_an_update_that_changes_nothing_emits_nothing(command: UpdateMenuItem):
    assert decide(command, given(ADDED)) == []


def test_updates_fold_into_the_state():
    state = given(
        ADDED,
        MenuItemRenamed(name="Mocha"),
        MenuItemDescriptionChanged(description="choc"),
        MenuItemPriceChanged(price_cents=420),
        MenuItemMoved(category_id="c2"),
    )
    assert (state.name, state.description, state.price_cents, state.category_id) == (
        "Mocha",
        "choc",
        420,
        "c2",
    )
    assert decide(UpdateMenuItem(name="Mocha", price_cents=420), state) == []


def test_an_update_of_an_unavailable_item_is_allowed():
    state = given(ADDED, MenuItemAvailabilityChanged(is_available=False))
    assert decide(UpdateMenuItem(price_cents=1), state) == [MenuItemPriceChanged(price_cents=1)]


# -- availability ------------------------------------------------------------------------------


def test_make_an_available_item_unavailable():
    state = given(ADDED)
    assert decide(SetAvailability(False), state) == [
        MenuItemAvailabilityChanged(is_available=False)
    ]
    assert not evolve(state, MenuItemAvailabilityChanged(is_available=False)).orderable


def test_make_an_unavailable_item_available():
    state = given(ADDED, MenuItemAvailabilityChanged(is_available=False))
    assert decide(SetAvailability(True), state) == [MenuItemAvailabilityChanged(is_available=True)]


def test_setting_the_current_availability_emits_nothing():
    assert decide(SetAvailability(True), given(ADDED)) == []
    state = given(ADDED, MenuItemAvailabilityChanged(is_available=False))
    assert decide(SetAvailability(False), state) == []


# -- archive -----------------------------------------------------------------------------------


def test_archive_an_item():
    assert decide(ArchiveMenuItem(), given(ADDED)) == [MenuItemArchived()]


def test_archive_an_unavailable_item():
    state = given(ADDED, MenuItemAvailabilityChanged(is_available=False))
    assert decide(ArchiveMenuItem(), state) == [MenuItemArchived()]


def test_an_archived_item_keeps_its_data_and_is_not_orderable():
    state = given(ADDED, MenuItemArchived())
    assert state.archived
    assert (state.name, state.price_cents, state.category_id) == ("Latte", 350, "c1")
    assert not state.orderable


def test_archiving_twice_is_invalid():
    raises(InvalidState, ArchiveMenuItem(), given(ADDED, MenuItemArchived()))
