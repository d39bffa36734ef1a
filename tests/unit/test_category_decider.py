"""Category decider: given past events, when a command, then these events (or this error)."""

from __future__ import annotations

from functools import reduce

import pytest

from coffeeshop.commands.category import (
    AttachItem,
    Category,
    CategoryCommand,
    CreateCategory,
    DetachItem,
    RemoveCategory,
    UpdateCategory,
    decide,
    evolve,
)
from coffeeshop.commands.errors import DomainError, InvalidState, NotFound
from coffeeshop.events.menu import (
    CategoryCreated,
    CategoryItemAttached,
    CategoryItemDetached,
    CategoryRemoved,
    CategoryRenamed,
    CategoryReordered,
)
from coffeeshop.events.registry import DomainEvent

CREATED = CategoryCreated(category_id="c1", name="Coffee", sort_order=1)


def given(*events: DomainEvent) -> Category:
    return reduce(evolve, events, Category())


def then(command: CategoryCommand, state: Category) -> list[DomainEvent]:
    events = decide(command, state)
    reduce(evolve, events, state)  # what is decided can always be applied
    return events


def raises(error: type[DomainError], command: CategoryCommand, state: Category) -> None:
    with pytest.raises(error):
        decide(command, state)


# -- create ----------------------------------------------------------------------------------


def test_create_a_new_category():
    assert then(CreateCategory("c1", "Coffee", 1), given()) == [CREATED]


def test_created_category_state():
    assert given(CREATED) == Category(
        category_id="c1", name="Coffee", sort_order=1, exists=True, removed=False
    )


def test_creating_twice_is_invalid():
    raises(InvalidState, CreateCategory("c1", "Coffee", 1), given(CREATED))


def test_creating_over_a_removed_category_is_invalid():
    raises(InvalidState, CreateCategory("c1", "Tea", 2), given(CREATED, CategoryRemoved()))


# -- not found ---------------------------------------------------------------------------------

COMMANDS_ON_EXISTING: list[CategoryCommand] = [
    UpdateCategory(name="Tea"),
    UpdateCategory(sort_order=3),
    UpdateCategory(),
    AttachItem("m1"),
    DetachItem("m1"),
    RemoveCategory(),
]


@pytest.mark.parametrize("command", COMMANDS_ON_EXISTING, ids=repr)
def test_every_command_on_an_unknown_category_is_not_found(command: CategoryCommand):
    raises(NotFound, command, given())


@pytest.mark.parametrize("command", COMMANDS_ON_EXISTING, ids=repr)
def test_every_command_on_a_removed_category_is_not_found(command: CategoryCommand):
    raises(NotFound, command, given(CREATED, CategoryRemoved()))


# -- update ------------------------------------------------------------------------------------


def test_rename_emits_only_the_new_name():
    assert then(UpdateCategory(name="Tea"), given(CREATED)) == [CategoryRenamed(name="Tea")]


def test_reorder_emits_only_the_new_sort_order():
    assert then(UpdateCategory(sort_order=5), given(CREATED)) == [CategoryReordered(sort_order=5)]


def test_rename_and_reorder_together():
    assert then(UpdateCategory(name="Tea", sort_order=5), given(CREATED)) == [
        CategoryRenamed(name="Tea"),
        CategoryReordered(sort_order=5),
    ]


def test_unchanged_name_with_new_sort_order_emits_only_the_reorder():
    assert then(UpdateCategory(name="Coffee", sort_order=0), given(CREATED)) == [
        CategoryReordered(sort_order=0)
    ]


def test_new_name_with_unchanged_sort_order_emits_only_the_rename():
    assert then(UpdateCategory(name="Tea", sort_order=1), given(CREATED)) == [
        CategoryRenamed(name="Tea")
    ]


@pytest.mark.parametrize(
    "command",
    [
        UpdateCategory(),
        UpdateCategory(name="Coffee"),
        UpdateCategory(sort_order=1),
        UpdateCategory(name="Coffee", sort_order=1),
    ],
    ids=repr,
)
def test_an_update_that_changes_nothing_emits_nothing(command: UpdateCategory):
    assert then(command, given(CREATED)) == []


def test_rename_after_a_rename_compares_with_the_latest_name():
    state = given(CREATED, CategoryRenamed(name="Tea"))
    assert then(UpdateCategory(name="Tea"), state) == []
    assert then(UpdateCategory(name="Coffee"), state) == [CategoryRenamed(name="Coffee")]


def test_updates_fold_into_the_state():
    state = given(CREATED, CategoryRenamed(name="Tea"), CategoryReordered(sort_order=-2))
    assert (state.name, state.sort_order) == ("Tea", -2)


# -- attach / detach -----------------------------------------------------------------------------


def test_attach_an_item():
    assert then(AttachItem("m1"), given(CREATED)) == [CategoryItemAttached(menu_item_id="m1")]


def test_attaching_an_attached_item_again_emits_nothing():
    state = given(CREATED, CategoryItemAttached(menu_item_id="m1"))
    assert then(AttachItem("m1"), state) == []


def test_attach_a_second_item():
    state = given(CREATED, CategoryItemAttached(menu_item_id="m1"))
    assert then(AttachItem("m2"), state) == [CategoryItemAttached(menu_item_id="m2")]
    assert given(
        CREATED, CategoryItemAttached(menu_item_id="m1"), CategoryItemAttached(menu_item_id="m2")
    ).item_ids == {"m1", "m2"}


def test_detach_an_attached_item():
    state = given(CREATED, CategoryItemAttached(menu_item_id="m1"))
    assert then(DetachItem("m1"), state) == [CategoryItemDetached(menu_item_id="m1")]


def test_detaching_an_item_that_is_not_attached_emits_nothing():
    assert then(DetachItem("m1"), given(CREATED)) == []


def test_detaching_twice_emits_nothing_the_second_time():
    state = given(
        CREATED, CategoryItemAttached(menu_item_id="m1"), CategoryItemDetached(menu_item_id="m1")
    )
    assert state.item_ids == frozenset()
    assert then(DetachItem("m1"), state) == []


# -- remove ------------------------------------------------------------------------------------


def test_remove_an_empty_category():
    assert then(RemoveCategory(), given(CREATED)) == [CategoryRemoved()]


def test_removed_state():
    assert given(CREATED, CategoryRemoved()).removed


def test_a_category_that_holds_items_cannot_be_removed():
    raises(InvalidState, RemoveCategory(), given(CREATED, CategoryItemAttached(menu_item_id="m1")))


def test_a_category_whose_items_all_left_can_be_removed():
    state = given(
        CREATED,
        CategoryItemAttached(menu_item_id="m1"),
        CategoryItemAttached(menu_item_id="m2"),
        CategoryItemDetached(menu_item_id="m1"),
    )
    raises(InvalidState, RemoveCategory(), state)
    state = evolve(state, CategoryItemDetached(menu_item_id="m2"))
    assert then(RemoveCategory(), state) == [CategoryRemoved()]


def test_removing_twice_is_not_found():
    raises(NotFound, RemoveCategory(), given(CREATED, CategoryRemoved()))
