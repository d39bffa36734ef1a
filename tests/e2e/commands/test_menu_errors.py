"""Every 4xx of the menu commands, on MariaDB: 422, 403, 404, 409, 412 (and 401)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.commands.conftest import Pair, Shop, accepted, problem, unique

CATEGORIES = "/api/v1/menu/categories"
ITEMS = "/api/v1/menu/items"


@dataclass
class Menu:
    category: str
    item: str


@pytest.fixture(scope="module")
def own(mysql_pair: Pair) -> Menu:
    """A category with an item in the restaurant under test (left as it is)."""
    category = mysql_pair.main.category()
    return Menu(category, mysql_pair.main.item(category))


@pytest.fixture(scope="module")
def foreign(mysql_pair: Pair) -> Menu:
    """A category with an item in the other restaurant."""
    category = mysql_pair.other.category()
    return Menu(category, mysql_pair.other.item(category))


# (method, path, body); {category} and {item} are filled in per test.
COMMANDS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", CATEGORIES, {"name": "Tea"}),
    ("PATCH", CATEGORIES + "/{category}", {"name": "Teas"}),
    ("DELETE", CATEGORIES + "/{category}", None),
    ("POST", ITEMS, {"name": "Chai", "category_id": "{category}", "price_cents": 300}),
    ("PATCH", ITEMS + "/{item}", {"price_cents": 1}),
    ("POST", ITEMS + "/{item}/availability", {"is_available": False}),
    ("DELETE", ITEMS + "/{item}", None),
]
COMMAND_IDS = [
    "create-category",
    "update-category",
    "remove-category",
    "add-item",
    "update-item",
    "availability",
    "archive-item",
]


def _fill(value: Any, menu: Menu) -> Any:
    if isinstance(value, str):
        return value.format(category=menu.category, item=menu.item)
    if isinstance(value, dict):
        return {k: _fill(v, menu) for k, v in value.items()}
    return value


# -- 401 / 403 ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), COMMANDS, ids=COMMAND_IDS)
@pytest.mark.parametrize("who", ["staff", "pos"])
def test_menu_commands_need_a_manager(
    mshop: Shop, own: Menu, who: str, method: str, path: str, body: dict[str, Any] | None
) -> None:
    before = mshop.count()
    caller = mshop.staff if who == "staff" else mshop.pos
    assert caller is not None
    problem(mshop.send(method, _fill(path, own), _fill(body, own), caller), 403)
    assert mshop.count() == before


@pytest.mark.parametrize(("method", "path", "body"), COMMANDS, ids=COMMAND_IDS)
def test_menu_commands_need_credentials(
    mshop: Shop, own: Menu, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = mshop.send(method, _fill(path, own), _fill(body, own), {})
    problem(response, 401)
    assert response.headers["www-authenticate"].lower().startswith("bearer")


# -- 404 ------------------------------------------------------------------------------------

TARGETED = COMMANDS[1:]  # every command that names a category or an item
TARGETED_IDS = COMMAND_IDS[1:]


@pytest.mark.parametrize(("method", "path", "body"), TARGETED, ids=TARGETED_IDS)
@pytest.mark.parametrize("whose", ["other-restaurant", "nonexistent"])
def test_unknown_ids_are_404(
    mysql_pair: Pair,
    foreign: Menu,
    whose: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    main, other = mysql_pair.main, mysql_pair.other
    menu = foreign if whose == "other-restaurant" else Menu(str(uuid.uuid4()), str(uuid.uuid4()))
    before, theirs = main.count(), other.count()
    body_404 = problem(main.send(method, _fill(path, menu), _fill(body, menu)), 404)
    assert "Rival" not in str(body_404)
    assert (main.count(), other.count()) == (before, theirs)


@pytest.mark.parametrize("whose", ["other-restaurant", "nonexistent"])
def test_moving_an_item_to_an_unknown_category_is_404(
    mshop: Shop, own: Menu, foreign: Menu, whose: str
) -> None:
    target = foreign.category if whose == "other-restaurant" else str(uuid.uuid4())
    before = mshop.count()
    problem(mshop.send("PATCH", f"{ITEMS}/{own.item}", {"category_id": target}), 404)
    assert mshop.count() == before


def test_a_removed_category_is_404(mshop: Shop) -> None:
    category_id = mshop.category()
    accepted(mshop.send("DELETE", f"{CATEGORIES}/{category_id}"))
    for method, path, body in COMMANDS[1:4]:
        problem(
            mshop.send(
                method, path.format(category=category_id), _fill(body, Menu(category_id, ""))
            ),
            404,
        )


# -- 422 ------------------------------------------------------------------------------------

CATEGORY_BODIES = {
    "missing-name": {},
    "empty-name": {"name": ""},
    "blank-name": {"name": "   "},
    "long-name": {"name": "x" * 101},
    "control-char": {"name": "Tea\x00"},
    "unknown-field": {"name": "Tea", "colour": "green"},
    "sort-order-text": {"name": "Tea", "sort_order": "first"},
    "sort-order-float": {"name": "Tea", "sort_order": 1.5},
    "null-name": {"name": None},
    "array": [{"name": "Tea"}],
}


@pytest.mark.parametrize("body", CATEGORY_BODIES.values(), ids=CATEGORY_BODIES.keys())
def test_bad_category_bodies_are_422(mshop: Shop, own: Menu, body: Any) -> None:
    before = mshop.count()
    problem(mshop.send("POST", CATEGORIES, body), 422)
    if body not in ({}, {"name": None}):  # a PATCH may leave out (or null) any field
        problem(mshop.send("PATCH", f"{CATEGORIES}/{own.category}", body), 422)
    assert mshop.count() == before


def _item(**changes: Any) -> dict[str, Any]:
    body = {"name": "Chai", "category_id": "{category}", "price_cents": 300}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


ITEM_BODIES = {
    "price-minus-one": (_item(price_cents=-1), ["body", "price_cents"]),
    "price-too-high": (_item(price_cents=10_000_001), ["body", "price_cents"]),
    "price-float": (_item(price_cents=3.5), ["body", "price_cents"]),
    "price-text": (_item(price_cents="three"), ["body", "price_cents"]),
    "missing-price": (_item(price_cents=...), ["body", "price_cents"]),
    "missing-category": (_item(category_id=...), ["body", "category_id"]),
    "malformed-category": (_item(category_id="not-a-uuid"), ["body", "category_id"]),
    "missing-name": (_item(name=...), ["body", "name"]),
    "long-name": (_item(name="x" * 101), ["body", "name"]),
    "long-description": (_item(description="d" * 501), ["body", "description"]),
    "availability-text": (_item(is_available="maybe"), ["body", "is_available"]),
    "unknown-field": (_item(calories=90), ["body", "calories"]),
}


@pytest.mark.parametrize(("body", "loc"), ITEM_BODIES.values(), ids=ITEM_BODIES.keys())
def test_bad_item_bodies_are_422(
    mshop: Shop, own: Menu, body: dict[str, Any], loc: list[str] | None
) -> None:
    before = mshop.count()
    found = problem(mshop.send("POST", ITEMS, _fill(body, own)), 422)
    if loc is not None:
        assert loc in [e["loc"] for e in found["errors"]], found
    assert mshop.count() == before


@pytest.mark.parametrize("price", [0, 10_000_000])
def test_price_bounds_are_accepted(mshop: Shop, own: Menu, price: int) -> None:
    accepted(mshop.send("POST", ITEMS, _fill(_item(price_cents=price), own)), 201)


@pytest.mark.parametrize(
    "body",
    [
        {"price_cents": -1},
        {"price_cents": 10_000_001},
        {"name": ""},
        {"category_id": "x"},
        {"is_available": False},
        {"description": "d" * 501},
        {"name": "Chai", "extra": 1},
    ],
    ids=[
        "price-minus-one",
        "price-too-high",
        "empty-name",
        "malformed-category",
        "availability-not-here",
        "long-description",
        "unknown-field",
    ],
)
def test_bad_item_updates_are_422(mshop: Shop, own: Menu, body: dict[str, Any]) -> None:
    before = mshop.count()
    problem(mshop.send("PATCH", f"{ITEMS}/{own.item}", body), 422)
    assert mshop.count() == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"is_available": "maybe"},
        {"is_available": None},
        {"is_available": True, "price_cents": 1},
    ],
    ids=["missing", "text", "null", "unknown-field"],
)
def test_bad_availability_is_422(mshop: Shop, own: Menu, body: dict[str, Any]) -> None:
    problem(mshop.send("POST", f"{ITEMS}/{own.item}/availability", body), 422)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", CATEGORIES + "/not-a-uuid", {"name": "Tea"}),
        ("DELETE", CATEGORIES + "/not-a-uuid", None),
        ("PATCH", ITEMS + "/1234", {"price_cents": 1}),
        ("POST", ITEMS + "/x'; DROP TABLE events;--/availability", {"is_available": True}),
        ("DELETE", ITEMS + "/not-a-uuid", None),
    ],
    ids=["update-category", "remove-category", "update-item", "availability", "archive-item"],
)
def test_malformed_path_ids_are_422(
    mshop: Shop, method: str, path: str, body: dict[str, Any] | None
) -> None:
    found = problem(mshop.send(method, path, body), 422)
    assert found["errors"][0]["loc"][0] == "path"


def test_a_body_that_is_not_json_is_422(mshop: Shop) -> None:
    response = mshop.client.post(
        CATEGORIES,
        content=b"{name: tea",
        headers={**mshop.owner, "Content-Type": "application/json"},
    )
    problem(response, 422)


@pytest.mark.parametrize(
    "value",
    ['"abc"', "abc", '"1", "2"', '"12345678901"', '"-1"', 'W/"x"', ""],
)
def test_a_malformed_if_match_is_422(mshop: Shop, own: Menu, value: str) -> None:
    before = mshop.count()
    body = problem(
        mshop.send(
            "PATCH",
            f"{CATEGORIES}/{own.category}",
            {"name": unique("Cat")},
            headers={"If-Match": value},
        ),
        422,
    )
    assert body["errors"][0]["loc"] == ["header", "If-Match"]
    assert mshop.count() == before


@pytest.mark.parametrize(
    "key", ["k" * 65, "", "has space", "tab\tkey"], ids=["65-chars", "empty", "space", "tab"]
)
def test_a_malformed_idempotency_key_is_422(mshop: Shop, key: str) -> None:
    before = mshop.count()
    problem(mshop.send("POST", CATEGORIES, {"name": "Tea"}, headers={"Idempotency-Key": key}), 422)
    assert mshop.count() == before


def test_a_64_char_idempotency_key_is_fine(mshop: Shop) -> None:
    accepted(
        mshop.send(
            "POST", CATEGORIES, {"name": "Tea"}, headers={"Idempotency-Key": uuid.uuid4().hex * 2}
        ),
        201,
    )


# -- 409 ------------------------------------------------------------------------------------


def test_removing_a_category_with_items_is_409(mshop: Shop, own: Menu) -> None:
    before = mshop.count()
    body = problem(mshop.send("DELETE", f"{CATEGORIES}/{own.category}"), 409)
    assert "item" in body["detail"]
    assert mshop.count() == before


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", "", {"price_cents": 999}),
        ("POST", "/availability", {"is_available": False}),
        ("DELETE", "", None),
    ],
    ids=["update", "availability", "archive-again"],
)
def test_changing_an_archived_item_is_409(
    mshop: Shop, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    item_id = mshop.item()
    accepted(mshop.send("DELETE", f"{ITEMS}/{item_id}"))
    before = mshop.count()
    problem(mshop.send(method, f"{ITEMS}/{item_id}{suffix}", body), 409)
    assert mshop.count() == before


# -- 412 ------------------------------------------------------------------------------------


def _stale_then_fresh(shop: Shop, method: str, path: str, body: Any, version: int) -> None:
    before = shop.count()
    stale = problem(shop.send(method, path, body, headers={"If-Match": f'"{version - 1}"'}), 412)
    assert stale["status"] == 412
    assert shop.count() == before
    ahead = shop.send(method, path, body, headers={"If-Match": f'"{version + 1}"'})
    problem(ahead, 412)
    assert ahead.headers["etag"] == f'"{version}"'
    done = accepted(shop.send(method, path, body, headers={"If-Match": f'"{version}"'}))
    assert done["version"] > version
    assert shop.count() > before


def test_if_match_on_category_update_and_removal(mshop: Shop) -> None:
    category_id = mshop.category()
    _stale_then_fresh(mshop, "PATCH", f"{CATEGORIES}/{category_id}", {"name": unique("C")}, 1)
    _stale_then_fresh(mshop, "DELETE", f"{CATEGORIES}/{category_id}", None, 2)


def test_if_match_on_item_commands(mshop: Shop) -> None:
    item_id = mshop.item()
    _stale_then_fresh(mshop, "PATCH", f"{ITEMS}/{item_id}", {"price_cents": 777}, 1)
    _stale_then_fresh(mshop, "POST", f"{ITEMS}/{item_id}/availability", {"is_available": False}, 2)
    _stale_then_fresh(mshop, "DELETE", f"{ITEMS}/{item_id}", None, 3)


@pytest.mark.parametrize("value", ['W/"1"', "1", "*"])
def test_other_if_match_forms_are_understood(mshop: Shop, value: str) -> None:
    category_id = mshop.category()
    accepted(
        mshop.send(
            "PATCH",
            f"{CATEGORIES}/{category_id}",
            {"name": unique("C")},
            headers={"If-Match": value},
        ),
        version=2,
    )
