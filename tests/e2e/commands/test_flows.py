"""The main command flows over HTTP, on MariaDB and on the embedded SQLite app.

Every accepted command answers ``{id, version, position}`` with ``ETag: "<version>"``; the
position is the restaurant's newest seq, and the restaurant's seqs stay gap-free.
"""

from __future__ import annotations

import uuid

from coffeeshop.commands.order import Status
from tests.e2e.commands.conftest import Pair, Shop, accepted, problem, unique

CATEGORIES = "/api/v1/menu/categories"
ITEMS = "/api/v1/menu/items"
ORDERS = "/api/v1/orders"


def _at_head(shop: Shop, body: dict[str, object], previous: int, appended: int) -> int:
    """The command appended ``appended`` events and reports the restaurant's newest seq."""
    assert body["position"] == previous + appended == shop.head(), (body, previous, appended)
    assert shop.count() == shop.head(), "a restaurant's seqs are gap-free from 1"
    return previous + appended


def test_menu_lifecycle(shop: Shop) -> None:
    start = shop.head()
    created = accepted(
        shop.send("POST", CATEGORIES, {"name": "  Coffee  ", "sort_order": 1}), 201, version=1
    )
    category_id = created["id"]
    position = _at_head(shop, created, start, 1)
    assert shop.stream(category_id)[0].data["name"] == "Coffee"  # trimmed

    renamed = accepted(
        shop.send("PATCH", f"{CATEGORIES}/{category_id}", {"name": "Hot coffee", "sort_order": 2}),
        version=3,
    )
    assert renamed["id"] == category_id
    position = _at_head(shop, renamed, position, 2)
    assert shop.types(category_id) == ["CategoryCreated", "CategoryRenamed", "CategoryReordered"]

    unchanged = accepted(
        shop.send("PATCH", f"{CATEGORIES}/{category_id}", {"name": "Hot coffee"}), version=3
    )
    assert shop.head() == position, "a PATCH that changes nothing appends nothing"
    assert unchanged["position"] <= position

    item = accepted(
        shop.send(
            "POST",
            ITEMS,
            {
                "name": "Latte",
                "description": "Milk <b>foam</b>",
                "category_id": category_id,
                "price_cents": 450,
            },
        ),
        201,
        version=1,
    )
    item_id = item["id"]
    position = _at_head(shop, item, position, 2)  # MenuItemAdded + CategoryItemAttached
    added = shop.stream(item_id)[0]
    assert added.type == "MenuItemAdded"
    assert added.data["description"] == "Milk bfoam/b"
    assert added.data["is_available"] is True
    assert shop.types(category_id)[-1] == "CategoryItemAttached"

    changed = accepted(
        shop.send("PATCH", f"{ITEMS}/{item_id}", {"name": "Caffè latte", "price_cents": 500}),
        version=3,
    )
    position = _at_head(shop, changed, position, 2)
    sold_out = accepted(
        shop.send("POST", f"{ITEMS}/{item_id}/availability", {"is_available": False}), version=4
    )
    position = _at_head(shop, sold_out, position, 1)
    accepted(
        shop.send("POST", f"{ITEMS}/{item_id}/availability", {"is_available": False}), version=4
    )
    assert shop.head() == position
    back = accepted(
        shop.send("POST", f"{ITEMS}/{item_id}/availability", {"is_available": True}), version=5
    )
    position = _at_head(shop, back, position, 1)

    problem(shop.send("DELETE", f"{CATEGORIES}/{category_id}"), 409)
    assert shop.head() == position

    archived = accepted(shop.send("DELETE", f"{ITEMS}/{item_id}"), version=6)
    position = _at_head(shop, archived, position, 2)  # MenuItemArchived + CategoryItemDetached
    assert shop.types(item_id)[-1] == "MenuItemArchived"

    removed = accepted(shop.send("DELETE", f"{CATEGORIES}/{category_id}"), version=6)
    _at_head(shop, removed, position, 1)
    assert shop.types(category_id)[-2:] == ["CategoryItemDetached", "CategoryRemoved"]


def test_moving_an_item_lets_the_old_category_go(shop: Shop) -> None:
    old, new = shop.category(), shop.category()
    item_id = shop.item(old)
    moved = accepted(shop.send("PATCH", f"{ITEMS}/{item_id}", {"category_id": new}), version=2)
    assert moved["id"] == item_id
    assert shop.types(item_id)[-1] == "MenuItemMoved"
    assert shop.types(new)[-1] == "CategoryItemAttached"
    assert shop.types(old)[-1] == "CategoryItemDetached"

    accepted(shop.send("DELETE", f"{CATEGORIES}/{old}"), version=4)
    problem(shop.send("DELETE", f"{CATEGORIES}/{new}"), 409)


def test_archiving_the_last_item_allows_removing_the_category(shop: Shop) -> None:
    category_id = shop.category()
    first, second = shop.item(category_id), shop.item(category_id, available=False)
    accepted(shop.send("DELETE", f"{ITEMS}/{first}"))
    body = problem(shop.send("DELETE", f"{CATEGORIES}/{category_id}"), 409)
    assert "item" in body["detail"]  # a sold-out item is still on the menu
    accepted(shop.send("DELETE", f"{ITEMS}/{second}"))
    accepted(shop.send("DELETE", f"{CATEGORIES}/{category_id}"))
    problem(shop.send("DELETE", f"{CATEGORIES}/{category_id}"), 404)
    problem(shop.send("PATCH", f"{CATEGORIES}/{category_id}", {"name": "Back"}), 404)


def test_order_lifecycle_from_a_pos_terminal(shop: Shop) -> None:
    assert shop.pos is not None
    latte, scone = shop.item(price_cents=450), shop.item(price_cents=300)
    table_id = shop.table()
    position = shop.head()

    placed = accepted(
        shop.send(
            "POST",
            ORDERS,
            {
                "table_id": table_id,
                "customer_name": "Zoë O'Brien-Smith",
                "notes": " <b>window</b> seat\x07 ",
                "items": [{"menu_item_id": latte, "quantity": 2, "notes": "oat milk"}],
            },
            shop.pos,
        ),
        201,
        version=1,
    )
    order_id = placed["id"]
    position = _at_head(shop, placed, position, 1)
    event = shop.stream(order_id)[0]
    assert event.type == "OrderPlaced"
    assert event.data["table_id"] == table_id
    assert event.data["customer_name"] == "Zoë O'Brien-Smith"
    assert event.data["notes"] == "bwindow/b seat"
    assert event.data["lines"][0]["unit_price_cents"] == 450
    assert event.data["lines"][0]["quantity"] == 2

    added = shop.send(
        "POST", f"{ORDERS}/{order_id}/items", {"menu_item_id": scone, "quantity": 3}, shop.pos
    )
    body = accepted(added, version=2)
    line_id = body["line_id"]
    uuid.UUID(line_id)
    assert body["id"] == order_id
    position = _at_head(shop, body, position, 1)
    assert line_id in shop.line_ids(order_id)
    assert shop.order_state(order_id).total_cents == 2 * 450 + 3 * 300

    extra = accepted(
        shop.send(
            "POST", f"{ORDERS}/{order_id}/items", {"menu_item_id": latte, "quantity": 1}, shop.pos
        ),
        version=3,
    )
    position = _at_head(shop, extra, position, 1)
    removed = accepted(
        shop.send("DELETE", f"{ORDERS}/{order_id}/items/{extra['line_id']}", None, shop.pos),
        version=4,
    )
    position = _at_head(shop, removed, position, 1)

    for version, step in enumerate(("start", "ready", "serve"), start=5):
        moved = accepted(
            shop.send("POST", f"{ORDERS}/{order_id}/{step}", None, shop.pos), version=version
        )
        position = _at_head(shop, moved, position, 1)

    paid = accepted(
        shop.send(
            "POST",
            f"{ORDERS}/{order_id}/pay",
            {"method": "card", "amount_cents": 1800, "tip_cents": 150},
            shop.pos,
        ),
        version=8,
    )
    _at_head(shop, paid, position, 1)
    state = shop.order_state(order_id)
    assert state.status is Status.PAID
    assert (state.paid_cents, state.tip_cents) == (1800, 150)
    assert shop.types(order_id) == [
        "OrderPlaced",
        "OrderItemAdded",
        "OrderItemAdded",
        "OrderItemRemoved",
        "OrderPreparationStarted",
        "OrderReady",
        "OrderServed",
        "OrderPaid",
    ]


def test_staff_place_and_cancel_an_order(shop: Shop) -> None:
    assert shop.staff is not None
    order_id = shop.place(shop.item(), who=shop.staff)["id"]
    accepted(shop.send("POST", f"{ORDERS}/{order_id}/start", None, shop.staff), version=2)
    cancelled = accepted(
        shop.send("POST", f"{ORDERS}/{order_id}/cancel", {"reason": "customer left"}, shop.staff),
        version=3,
    )
    assert cancelled["id"] == order_id
    assert shop.stream(order_id)[-1].data["reason"] == "customer left"
    assert shop.order_state(order_id).status is Status.CANCELLED
    problem(shop.send("POST", f"{ORDERS}/{order_id}/ready", None, shop.staff), 409)


def test_positions_are_per_restaurant(pair: Pair) -> None:
    """Another restaurant's commands do not move this one's position, and vice versa."""
    main, other = pair.main, pair.other
    first = accepted(main.send("POST", CATEGORIES, {"name": unique("Cat")}), 201)
    theirs = [
        accepted(other.send("POST", CATEGORIES, {"name": unique("Cat")}), 201)["position"]
        for _ in range(3)
    ]
    assert theirs == list(range(theirs[0], theirs[0] + 3))
    assert theirs[-1] == other.head()
    second = accepted(main.send("POST", CATEGORIES, {"name": unique("Cat")}), 201)
    assert second["position"] == first["position"] + 1 == main.head()
