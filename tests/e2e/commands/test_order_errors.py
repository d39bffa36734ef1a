"""Every 4xx of the order commands, on MariaDB: 422, 403/401, 404, 409, 412."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from coffeeshop.commands.order import Status
from tests.e2e.commands.conftest import Pair, Shop, accepted, problem

ORDERS = "/api/v1/orders"
STATES = ("pending", "preparing", "ready", "served", "paid", "cancelled")


@dataclass
class Kit:
    """What order commands refer to: a menu item, a table, and an order with two lines."""

    item: str
    table: str
    order: str
    line: str


def _kit(shop: Shop) -> Kit:
    item, second = shop.item(price_cents=400), shop.item(price_cents=250)
    order_id = shop.place(item, second)["id"]
    return Kit(item, shop.table(), order_id, shop.line_ids(order_id)[0])


@pytest.fixture(scope="module")
def own(mysql_pair: Pair) -> Kit:
    return _kit(mysql_pair.main)


@pytest.fixture(scope="module")
def foreign(mysql_pair: Pair) -> Kit:
    return _kit(mysql_pair.other)


@pytest.fixture(scope="module")
def by_state(mysql_pair: Pair) -> dict[str, str]:
    """One order (two lines) in each status; the invalid commands below leave them as they are."""
    shop = mysql_pair.main
    item, second = shop.item(price_cents=400), shop.item(price_cents=250)
    return {status: shop.order_in(status, item, second) for status in STATES}


def _pay(shop: Shop, order_id: str) -> dict[str, Any]:
    total = shop.order_state(order_id).total_cents or 650
    return {"method": "card", "amount_cents": total}


def _command(shop: Shop, name: str, order_id: str, item: str) -> tuple[str, str, Any]:
    line = shop.line_ids(order_id)[0] if shop.stream(order_id) else str(uuid.uuid4())
    return {
        "add-item": ("POST", f"{ORDERS}/{order_id}/items", {"menu_item_id": item, "quantity": 1}),
        "remove-item": ("DELETE", f"{ORDERS}/{order_id}/items/{line}", None),
        "start": ("POST", f"{ORDERS}/{order_id}/start", None),
        "ready": ("POST", f"{ORDERS}/{order_id}/ready", None),
        "serve": ("POST", f"{ORDERS}/{order_id}/serve", None),
        "pay": ("POST", f"{ORDERS}/{order_id}/pay", _pay(shop, order_id)),
        "cancel": ("POST", f"{ORDERS}/{order_id}/cancel", {"reason": "mistake"}),
    }[name]


ON_ORDER = ("add-item", "remove-item", "start", "ready", "serve", "pay", "cancel")


# -- 401 / 403 ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ON_ORDER)
def test_order_commands_need_credentials(mshop: Shop, own: Kit, name: str) -> None:
    method, path, body = _command(mshop, name, own.order, own.item)
    problem(mshop.send(method, path, body, {}), 401)
    problem(mshop.send(method, path, body, {"X-API-Key": "cs_not-a-real-key"}), 401)
    problem(mshop.send(method, path, body, {"Authorization": "Bearer nope"}), 401)


def test_placing_needs_credentials(mshop: Shop, own: Kit) -> None:
    body = {"items": [{"menu_item_id": own.item, "quantity": 1}]}
    problem(mshop.send("POST", ORDERS, body, {}), 401)


# -- 404 ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ON_ORDER)
@pytest.mark.parametrize("whose", ["other-restaurant", "nonexistent"])
def test_unknown_orders_are_404(
    mysql_pair: Pair, own: Kit, foreign: Kit, whose: str, name: str
) -> None:
    main, other = mysql_pair.main, mysql_pair.other
    if whose == "other-restaurant":
        method, path, body = _command(other, name, foreign.order, own.item)
    else:
        method, path, body = _command(main, name, str(uuid.uuid4()), own.item)
    before, theirs = main.count(), other.count()
    problem(main.send(method, path, body), 404)
    problem(main.send(method, path, body, main.pos), 404)
    assert (main.count(), other.count()) == (before, theirs)


@pytest.mark.parametrize("whose", ["other-restaurant", "nonexistent"])
def test_unknown_references_when_placing_are_404(
    mshop: Shop, own: Kit, foreign: Kit, whose: str
) -> None:
    item = foreign.item if whose == "other-restaurant" else str(uuid.uuid4())
    table = foreign.table if whose == "other-restaurant" else str(uuid.uuid4())
    before = mshop.count()
    problem(mshop.send("POST", ORDERS, {"items": [{"menu_item_id": item, "quantity": 1}]}), 404)
    problem(
        mshop.send(
            "POST",
            ORDERS,
            {"table_id": table, "items": [{"menu_item_id": own.item, "quantity": 1}]},
        ),
        404,
    )
    problem(
        mshop.send(
            "POST",
            ORDERS,
            {
                "items": [
                    {"menu_item_id": own.item, "quantity": 1},
                    {"menu_item_id": item, "quantity": 1},
                ]
            },
        ),
        404,
    )
    problem(
        mshop.send("POST", f"{ORDERS}/{own.order}/items", {"menu_item_id": item, "quantity": 1}),
        404,
    )
    assert mshop.count() == before


def test_an_unknown_line_is_404(mshop: Shop, own: Kit, foreign: Kit) -> None:
    for line in (str(uuid.uuid4()), foreign.line):
        problem(mshop.send("DELETE", f"{ORDERS}/{own.order}/items/{line}"), 404)


# -- 422 ------------------------------------------------------------------------------------


def _order(item: str, **changes: Any) -> dict[str, Any]:
    line = {"menu_item_id": item, "quantity": 1}
    line.update(changes.pop("line", {}))
    body: dict[str, Any] = {"items": [line]}
    body.update(changes)
    return body


PLACE_BODIES: dict[str, tuple[Any, list[Any] | None]] = {
    "quantity-0": ({"line": {"quantity": 0}}, ["body", "items", 0, "quantity"]),
    "quantity-100": ({"line": {"quantity": 100}}, ["body", "items", 0, "quantity"]),
    "quantity-minus": ({"line": {"quantity": -1}}, ["body", "items", 0, "quantity"]),
    "quantity-float": ({"line": {"quantity": 1.5}}, ["body", "items", 0, "quantity"]),
    "malformed-item-id": (
        {"line": {"menu_item_id": "latte"}},
        ["body", "items", 0, "menu_item_id"],
    ),
    "line-unknown-field": ({"line": {"price_cents": 1}}, ["body", "items", 0, "price_cents"]),
    "line-notes-501": ({"line": {"notes": "n" * 501}}, ["body", "items", 0, "notes"]),
    "no-items": ({"items": []}, ["body", "items"]),
    "items-not-a-list": ({"items": "latte"}, ["body", "items"]),
    "customer-digits": ({"customer_name": "R2D2"}, ["body", "customer_name"]),
    "customer-digit-suffix": ({"customer_name": "Anna 2"}, ["body", "customer_name"]),
    "customer-markup": ({"customer_name": "<script>"}, ["body", "customer_name"]),
    "customer-101": ({"customer_name": "a" * 101}, ["body", "customer_name"]),
    "customer-empty": ({"customer_name": ""}, ["body", "customer_name"]),
    "notes-501": ({"notes": "n" * 501}, ["body", "notes"]),
    "malformed-table": ({"table_id": "table-1"}, ["body", "table_id"]),
    "unknown-field": ({"total_cents": 1}, ["body", "total_cents"]),
    "status-field": ({"status": "paid"}, ["body", "status"]),
}


@pytest.mark.parametrize(("changes", "loc"), PLACE_BODIES.values(), ids=PLACE_BODIES.keys())
def test_bad_orders_are_422(
    mshop: Shop, own: Kit, changes: dict[str, Any], loc: list[Any] | None
) -> None:
    before = mshop.count()
    body = problem(mshop.send("POST", ORDERS, _order(own.item, **changes), mshop.pos), 422)
    if loc is not None:
        assert loc in [e["loc"] for e in body["errors"]], body
    assert mshop.count() == before


def test_missing_items_is_422(mshop: Shop) -> None:
    problem(mshop.send("POST", ORDERS, {"customer_name": "Ann"}), 422)
    problem(mshop.send("POST", ORDERS, None), 422)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("José", True),
        ("Zoë O'Brien-Smith", True),
        ("Dr. Who", True),
        ("李小龍", True),
        ("Μαρία", True),
        ("محمد", True),
        pytest.param("अनिल", True, id="hindi"),  # vowel signs are marks
        pytest.param("สมศักดิ์", True, id="thai"),  # tone marks too
        ("Ann2", False),
        ("٣ Ali", False),  # Arabic-Indic digit
        ("Ann_B", False),
        ("Ann!", False),
    ],
)
def test_customer_name_rules(mshop: Shop, own: Kit, name: str, valid: bool) -> None:
    response = mshop.send("POST", ORDERS, _order(own.item, customer_name=name))
    if valid:
        accepted(response, 201)
    else:
        problem(response, 422)


@pytest.mark.parametrize(
    "body",
    [
        {"menu_item_id": "x", "quantity": 1},
        {"quantity": 1},
        {"menu_item_id": None},
        "quantity-0",
        "quantity-100",
        "unknown-field",
    ],
    ids=[
        "malformed-item",
        "missing-item",
        "null-item",
        "quantity-0",
        "quantity-100",
        "unknown-field",
    ],
)
def test_bad_lines_are_422(mshop: Shop, own: Kit, body: Any) -> None:
    if body == "quantity-0":
        body = {"menu_item_id": own.item, "quantity": 0}
    elif body == "quantity-100":
        body = {"menu_item_id": own.item, "quantity": 100}
    elif body == "unknown-field":
        body = {"menu_item_id": own.item, "quantity": 1, "unit_price_cents": 1}
    before = mshop.count()
    problem(mshop.send("POST", f"{ORDERS}/{own.order}/items", body), 422)
    assert mshop.count() == before


@pytest.mark.parametrize("quantity", [1, 99])
def test_quantity_bounds_are_accepted(mshop: Shop, own: Kit, quantity: int) -> None:
    placed = mshop.place(own.item, quantity=quantity)
    assert mshop.order_state(placed["id"]).lines[0].quantity == quantity


@pytest.mark.parametrize(
    "body",
    [
        {"method": "bitcoin", "amount_cents": 650},
        {"method": "cash", "amount_cents": -1},
        {"method": "cash", "amount_cents": 650, "tip_cents": -5},
        {"method": "cash"},
        {"amount_cents": 650},
        {"method": "cash", "amount_cents": 649},
        {"method": "cash", "amount_cents": 651},
        {"method": "cash", "amount_cents": "650 USD"},
        {"method": "cash", "amount_cents": 650, "change_cents": 0},
    ],
    ids=[
        "bad-method",
        "negative-amount",
        "negative-tip",
        "missing-amount",
        "missing-method",
        "amount-below-total",
        "amount-above-total",
        "amount-text",
        "unknown-field",
    ],
)
def test_bad_payments_are_422(mshop: Shop, own: Kit, body: dict[str, Any]) -> None:
    order_id = mshop.order_in("served", own.item, mshop.item(price_cents=250))
    assert mshop.order_state(order_id).total_cents == 650
    before = mshop.count()
    problem(mshop.send("POST", f"{ORDERS}/{order_id}/pay", body), 422)
    assert mshop.count() == before
    accepted(
        mshop.send("POST", f"{ORDERS}/{order_id}/pay", {"method": "cash", "amount_cents": 650})
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"reason": ""},
        {"reason": "  "},
        {"reason": "<>"},
        {"reason": "r" * 501},
        {"reason": "ok", "refund": True},
        None,
    ],
    ids=["missing", "empty", "blank", "only-brackets", "too-long", "unknown-field", "no-body"],
)
def test_bad_cancellations_are_422(mshop: Shop, own: Kit, body: Any) -> None:
    before = mshop.count()
    problem(mshop.send("POST", f"{ORDERS}/{own.order}/cancel", body), 422)
    assert mshop.count() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/not-a-uuid/items"),
        ("DELETE", "/not-a-uuid/items/{line}"),
        ("DELETE", "/{order}/items/not-a-uuid"),
        ("POST", "/12/start"),
        ("POST", "/x/ready"),
        ("POST", "/x/serve"),
        ("POST", "/x/pay"),
        ("POST", "/x/cancel"),
    ],
    ids=[
        "add-item",
        "remove-item-order",
        "remove-item-line",
        "start",
        "ready",
        "serve",
        "pay",
        "cancel",
    ],
)
def test_malformed_path_ids_are_422(mshop: Shop, own: Kit, method: str, path: str) -> None:
    bodies = {
        "items": {"menu_item_id": own.item, "quantity": 1},
        "pay": {"method": "cash", "amount_cents": 650},
        "cancel": {"reason": "x"},
    }
    body = next((b for k, b in bodies.items() if path.endswith(k)), None)
    url = ORDERS + path.format(order=own.order, line=own.line)
    found = problem(mshop.send(method, url, body), 422)
    assert found["errors"][0]["loc"][0] == "path"


@pytest.mark.parametrize("value", ['"v1"', "one", '"1";"2"'])
def test_a_malformed_if_match_on_orders_is_422(mshop: Shop, own: Kit, value: str) -> None:
    problem(
        mshop.send(
            "POST", f"{ORDERS}/{own.order}/start", None, mshop.pos, headers={"If-Match": value}
        ),
        422,
    )


def test_a_65_char_idempotency_key_on_orders_is_422(mshop: Shop, own: Kit) -> None:
    before = mshop.count()
    problem(
        mshop.send(
            "POST", ORDERS, _order(own.item), mshop.pos, headers={"Idempotency-Key": "k" * 65}
        ),
        422,
    )
    assert mshop.count() == before


# -- 409 ------------------------------------------------------------------------------------

INVALID = [
    ("pending", "ready"),
    ("pending", "serve"),
    ("pending", "pay"),
    ("preparing", "start"),
    ("preparing", "serve"),
    ("preparing", "pay"),
    ("ready", "start"),
    ("ready", "ready"),
    ("ready", "pay"),
    ("ready", "add-item"),
    ("ready", "remove-item"),
    ("served", "start"),
    ("served", "ready"),
    ("served", "serve"),
    ("served", "add-item"),
    ("served", "remove-item"),
    *[("paid", name) for name in ON_ORDER],
    *[("cancelled", name) for name in ON_ORDER],
]


@pytest.mark.parametrize(("status", "name"), INVALID, ids=[f"{s}-{n}" for s, n in INVALID])
def test_invalid_transitions_are_409(
    mshop: Shop, own: Kit, by_state: dict[str, str], status: str, name: str
) -> None:
    order_id = by_state[status]
    method, path, body = _command(mshop, name, order_id, own.item)
    before = mshop.stream(order_id)
    problem(mshop.send(method, path, body, mshop.pos), 409)
    assert mshop.stream(order_id) == before
    assert mshop.order_state(order_id).status is Status(status)


@pytest.mark.parametrize("status", ["pending", "preparing", "ready", "served"])
def test_cancel_works_before_paid(mshop: Shop, own: Kit, status: str) -> None:
    order_id = mshop.order_in(status, own.item)
    accepted(mshop.send("POST", f"{ORDERS}/{order_id}/cancel", {"reason": "spilled"}))


def test_removing_the_last_line_is_409(mshop: Shop, own: Kit) -> None:
    placed = mshop.place(own.item)
    line = mshop.line_ids(placed["id"])[0]
    problem(mshop.send("DELETE", f"{ORDERS}/{placed['id']}/items/{line}"), 409)


@pytest.mark.parametrize("how", ["sold-out", "archived"])
def test_ordering_an_item_off_the_menu_is_409(mshop: Shop, own: Kit, how: str) -> None:
    item = mshop.item()
    if how == "sold-out":
        accepted(
            mshop.send("POST", f"/api/v1/menu/items/{item}/availability", {"is_available": False})
        )
    else:
        accepted(mshop.send("DELETE", f"/api/v1/menu/items/{item}"))
    before = mshop.count()
    problem(mshop.send("POST", ORDERS, _order(item), mshop.pos), 409)
    problem(
        mshop.send(
            "POST",
            ORDERS,
            {
                "items": [
                    {"menu_item_id": own.item, "quantity": 1},
                    {"menu_item_id": item, "quantity": 1},
                ]
            },
        ),
        409,
    )
    order_id = mshop.order_in("pending", own.item)
    after_setup = mshop.count()
    problem(
        mshop.send(
            "POST", f"{ORDERS}/{order_id}/items", {"menu_item_id": item, "quantity": 1}, mshop.pos
        ),
        409,
    )
    assert mshop.count() == after_setup == before + 1


def test_an_item_created_sold_out_cannot_be_ordered(mshop: Shop) -> None:
    item = mshop.item(available=False)
    problem(mshop.send("POST", ORDERS, _order(item)), 409)


def test_unit_prices_are_captured_when_added(mshop: Shop) -> None:
    """Price changes after an order reach only orders placed later."""
    item = mshop.item(price_cents=300)
    order_id = mshop.place(item)["id"]
    accepted(mshop.send("PATCH", f"/api/v1/menu/items/{item}", {"price_cents": 500}))
    assert mshop.order_state(order_id).total_cents == 300
    accepted(
        mshop.send("POST", f"{ORDERS}/{order_id}/items", {"menu_item_id": item, "quantity": 1})
    )
    assert mshop.order_state(order_id).total_cents == 800


# -- 412 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "name"),
    [
        ("pending", "add-item"),
        ("pending", "remove-item"),
        ("pending", "start"),
        ("preparing", "ready"),
        ("ready", "serve"),
        ("served", "pay"),
        ("pending", "cancel"),
    ],
    ids=["add-item", "remove-item", "start", "ready", "serve", "pay", "cancel"],
)
def test_if_match_on_order_commands(mshop: Shop, own: Kit, status: str, name: str) -> None:
    order_id = mshop.order_in(status, own.item, mshop.item())
    version = len(mshop.stream(order_id))
    method, path, body = _command(mshop, name, order_id, own.item)
    before = mshop.count()
    for stale in (version - 1, version + 1, 0):
        response = mshop.send(method, path, body, mshop.pos, headers={"If-Match": f'"{stale}"'})
        problem(response, 412)
        assert response.headers["etag"] == f'"{version}"'
    assert mshop.count() == before
    done = accepted(
        mshop.send(method, path, body, mshop.pos, headers={"If-Match": f'"{version}"'}),
        version=version + 1,
    )
    assert done["id"] == order_id
