"""Random command sequences against the Category and MenuItem deciders.

Each aggregate alone, then both together the way MenuCommands composes them (adding an item
attaches it to its category, moving it re-attaches it, archiving it detaches it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from functools import reduce
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from coffeeshop.commands import category, menu_item
from coffeeshop.commands.category import (
    AttachItem,
    Category,
    CategoryCommand,
    CreateCategory,
    DetachItem,
    RemoveCategory,
    UpdateCategory,
)
from coffeeshop.commands.errors import DomainError, InvalidState, NotFound
from coffeeshop.commands.menu_item import (
    AddMenuItem,
    ArchiveMenuItem,
    MenuItem,
    MenuItemCommand,
    SetAvailability,
    UpdateMenuItem,
)
from coffeeshop.events.registry import DomainEvent

ITEM_IDS = ["m1", "m2", "m3", "m4"]
CATEGORY_IDS = ["c1", "c2", "c3"]
names = st.sampled_from(["Coffee", "Tea", "Cakes"])
sort_orders = st.integers(-2, 2)
item_names = st.sampled_from(["Latte", "Mocha"])
descriptions = st.sampled_from(["", "milky"])
prices = st.sampled_from([0, 350, 400, 10_000_000])


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


def attempt(decide: Any, command: Any, state: Any) -> tuple[list[DomainEvent], DomainError | None]:
    """Decide; on a refusal the state must be exactly as it was."""
    snapshot = copy.deepcopy(state)
    try:
        return decide(command, state), None
    except DomainError as error:
        assert state == snapshot
        return [], error


# -- Category alone ----------------------------------------------------------------------------

category_commands: st.SearchStrategy[CategoryCommand] = weighted(
    (1, st.builds(CreateCategory, st.just("c1"), names, sort_orders)),
    (2, st.builds(UpdateCategory, st.none() | names, st.none() | sort_orders)),
    (4, st.builds(AttachItem, st.sampled_from(ITEM_IDS))),
    (4, st.builds(DetachItem, st.sampled_from(ITEM_IDS))),
    (2, st.just(RemoveCategory())),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(category_commands, min_size=1, max_size=40))
def test_category_invariants(commands: list[CategoryCommand]):
    state, produced = Category(), []
    for command in [CreateCategory("c1", "Coffee", 0), *commands]:
        before = state
        events, refused = attempt(category.decide, command, before)
        if before.removed:
            expected = InvalidState if isinstance(command, CreateCategory) else NotFound
            assert type(refused) is expected, "a removed category never changes"
        if isinstance(command, RemoveCategory) and before.exists and not before.removed:
            assert (refused is None) == (not before.item_ids)
            event("removed" if refused is None else "refused: holds items")
        state = reduce(category.evolve, events, before)
        produced.extend(events)
        if state.removed:
            assert state.item_ids == frozenset()
        if refused is None and not isinstance(command, CreateCategory | RemoveCategory):
            assert category.decide(command, state) == [], "applying it again changes nothing"
            assert (events == []) == (state == before), "events only when something changes"
        if refused is None and isinstance(command, UpdateCategory):
            assert len(events) == (command.name not in (None, before.name)) + (
                command.sort_order not in (None, before.sort_order)
            )
    assert reduce(category.evolve, produced, Category()) == state


# -- MenuItem alone ----------------------------------------------------------------------------

item_commands: st.SearchStrategy[MenuItemCommand] = weighted(
    (
        1,
        st.builds(
            AddMenuItem,
            st.just("m1"),
            st.just("c1"),
            item_names,
            descriptions,
            prices,
            st.booleans(),
        ),
    ),
    (
        4,
        st.builds(
            UpdateMenuItem,
            st.none() | item_names,
            st.none() | descriptions,
            st.none() | st.sampled_from(CATEGORY_IDS),
            st.none() | prices,
        ),
    ),
    (3, st.builds(SetAvailability, st.booleans())),
    (1, st.just(ArchiveMenuItem())),
)
FIELDS = ["name", "description", "category_id", "price_cents"]


@settings(max_examples=300, deadline=None)
@given(st.booleans(), st.lists(item_commands, min_size=1, max_size=40))
def test_menu_item_invariants(available: bool, commands: list[MenuItemCommand]):
    state, produced = MenuItem(), []
    for command in [AddMenuItem("m1", "c1", "Latte", "", 350, available), *commands]:
        before = state
        events, refused = attempt(menu_item.decide, command, before)
        if before.archived:
            assert type(refused) is InvalidState, "an archived item never changes"
        state = reduce(menu_item.evolve, events, before)
        produced.extend(events)
        if refused is not None:
            continue
        if isinstance(command, UpdateMenuItem):
            requested = {f: getattr(command, f) for f in FIELDS if getattr(command, f) is not None}
            assert {f: getattr(state, f) for f in requested} == requested
            changed = [f for f in requested if requested[f] != getattr(before, f)]
            assert len(events) == len(changed), "one event per changed field, none otherwise"
            assert state.is_available == before.is_available
        if isinstance(command, SetAvailability):
            assert state.is_available == command.is_available
            assert len(events) == (command.is_available != before.is_available)
        if isinstance(command, UpdateMenuItem | SetAvailability):
            assert menu_item.decide(command, state) == []
        if isinstance(command, ArchiveMenuItem):
            assert state.archived
            assert not state.orderable
            event("archived")
    assert reduce(menu_item.evolve, produced, MenuItem()) == state


# -- both, composed like MenuCommands ----------------------------------------------------------


@dataclass
class Menu:
    categories: dict[str, Category]
    items: dict[str, MenuItem]
    history: list[tuple[str, DomainEvent]]


@dataclass(frozen=True)
class NewCategory:
    category_id: str


@dataclass(frozen=True)
class NewItem:
    item_id: str
    category_id: str


@dataclass(frozen=True)
class OnCategory:
    category_id: str
    command: CategoryCommand


@dataclass(frozen=True)
class OnItem:
    item_id: str
    command: MenuItemCommand


def handle(menu: Menu, step: Any) -> None:
    """One use case: every decision is made first, then all streams are written together."""
    writes: list[tuple[str, list[DomainEvent]]] = []
    match step:
        case NewCategory(category_id=cid):
            command = CreateCategory(cid, cid.upper(), 0)
            writes.append((cid, category.decide(command, menu.categories[cid])))
        case OnCategory(category_id=cid, command=command):
            writes.append((cid, category.decide(command, menu.categories[cid])))
        case NewItem(item_id=iid, category_id=cid):
            attach = category.decide(AttachItem(iid), menu.categories[cid])
            add = AddMenuItem(iid, cid, "Latte", "", 350, True)
            writes += [(iid, menu_item.decide(add, menu.items[iid])), (cid, attach)]
        case OnItem(item_id=iid, command=command):
            item = menu.items[iid]
            writes.append((iid, menu_item.decide(command, item)))
            new = getattr(command, "category_id", None)
            if isinstance(command, UpdateMenuItem) and new is not None and new != item.category_id:
                writes.append((new, category.decide(AttachItem(iid), menu.categories[new])))
                old = item.category_id
                writes.append((old, category.decide(DetachItem(iid), menu.categories[old])))
            if isinstance(command, ArchiveMenuItem):
                old = item.category_id
                writes.append((old, category.decide(DetachItem(iid), menu.categories[old])))
    for stream_id, events in writes:
        for domain_event in events:
            menu.history.append((stream_id, domain_event))
            apply(menu, stream_id, domain_event)


def apply(menu: Menu, stream_id: str, domain_event: DomainEvent) -> None:
    if stream_id in menu.categories:
        menu.categories[stream_id] = category.evolve(menu.categories[stream_id], domain_event)
    else:
        menu.items[stream_id] = menu_item.evolve(menu.items[stream_id], domain_event)


def empty_menu() -> Menu:
    categories = {cid: Category() for cid in CATEGORY_IDS}
    return Menu(categories, {iid: MenuItem() for iid in ITEM_IDS}, [])


category_ids = st.sampled_from(CATEGORY_IDS)
item_ids = st.sampled_from(ITEM_IDS)
world_steps = weighted(
    (2, st.builds(NewCategory, category_ids)),
    (3, st.builds(NewItem, item_ids, category_ids)),
    (1, st.builds(OnCategory, category_ids, st.builds(UpdateCategory, names, sort_orders))),
    (3, st.builds(OnCategory, category_ids, st.just(RemoveCategory()))),
    (
        3,
        st.builds(
            OnItem,
            item_ids,
            st.builds(UpdateMenuItem, st.none(), st.none(), category_ids, st.none() | prices),
        ),
    ),
    (1, st.builds(OnItem, item_ids, st.builds(SetAvailability, st.booleans()))),
    (2, st.builds(OnItem, item_ids, st.just(ArchiveMenuItem()))),
)


def assert_consistent(menu: Menu) -> None:
    for cid, owner in menu.categories.items():
        active = {
            iid
            for iid, item in menu.items.items()
            if item.exists and not item.archived and item.category_id == cid
        }
        assert owner.item_ids == active, f"{cid} holds {set(owner.item_ids)}, not {active}"
        if active:
            assert owner.exists
            assert not owner.removed, "a category with active items was removed"


@settings(max_examples=300, deadline=None)
@given(st.lists(world_steps, min_size=1, max_size=50))
def test_the_menu_stays_consistent(steps: list[Any]):
    menu = empty_menu()
    seed = [NewCategory("c1"), NewCategory("c2"), NewItem("m1", "c1"), NewItem("m2", "c2")]
    for step in [*seed, *steps]:
        before = copy.deepcopy(menu)
        archived = {iid for iid, item in menu.items.items() if item.archived}
        try:
            handle(menu, step)
        except DomainError as error:
            assert menu == before, "a refused use case writes nothing"
            event(f"refused {type(step).__name__}: {type(error).__name__}")
        else:
            event(f"accepted {type(step).__name__}")
        for iid in archived:
            assert menu.items[iid] == before.items[iid], "archived items never change"
        assert_consistent(menu)
    replayed = empty_menu()
    for stream_id, domain_event in menu.history:
        apply(replayed, stream_id, domain_event)
    assert (replayed.categories, replayed.items) == (menu.categories, menu.items)


def test_menu_item_fields_under_test_are_the_updatable_ones():
    updatable = {f.name for f in fields(UpdateMenuItem)}
    assert updatable == set(FIELDS)
