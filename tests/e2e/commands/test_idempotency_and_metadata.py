"""Idempotency-Key on commands, and who/why every event records in its metadata."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.commands.conftest import Pair, Shop, accepted, problem, unique

CATEGORIES = "/api/v1/menu/categories"
ITEMS = "/api/v1/menu/items"
ORDERS = "/api/v1/orders"


def _key() -> str:
    return f"key-{uuid.uuid4()}"


Creator = Callable[[Shop], tuple[str, dict[str, Any]]]


def _category(shop: Shop) -> tuple[str, dict[str, Any]]:
    return CATEGORIES, {"name": unique("Cat"), "sort_order": 3}


def _item(shop: Shop) -> tuple[str, dict[str, Any]]:
    return ITEMS, {"name": unique("Item"), "category_id": shop.category(), "price_cents": 420}


def _order(shop: Shop) -> tuple[str, dict[str, Any]]:
    return ORDERS, {"customer_name": "Ann", "items": [{"menu_item_id": shop.item(), "quantity": 2}]}


CREATORS = {"category": _category, "item": _item, "order": _order}


@pytest.mark.parametrize("creator", CREATORS.values(), ids=CREATORS.keys())
def test_a_retry_replays_the_first_response(shop: Shop, creator: Creator) -> None:
    path, body = creator(shop)
    key = _key()
    first = shop.send("POST", path, body, headers={"Idempotency-Key": key})
    original = accepted(first, 201, version=1)
    assert "idempotent-replayed" not in first.headers
    count = shop.count()

    for _ in range(2):
        again = shop.send("POST", path, body, headers={"Idempotency-Key": key})
        assert again.status_code == 201, again.text
        assert again.json() == original
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["etag"] == first.headers["etag"]
    assert shop.count() == count, "a replay appends nothing"

    field, value = ("customer_name", "Bob") if path == ORDERS else ("name", unique("Other"))
    changed = {**body, field: value}
    problem(shop.send("POST", path, changed, headers={"Idempotency-Key": key}), 422)
    assert shop.count() == count


def test_the_same_json_spelled_differently_is_the_same_request(mshop: Shop) -> None:
    key, name = _key(), unique("Cat")
    headers = {**mshop.owner, "Idempotency-Key": key, "Content-Type": "application/json"}
    first = mshop.client.post(
        CATEGORIES, content=json.dumps({"name": name, "sort_order": 1}), headers=headers
    )
    original = accepted(first, 201)
    count = mshop.count()
    again = mshop.client.post(
        CATEGORIES,
        content='{ "sort_order" : 1 ,\n "name" : ' + json.dumps(name) + "}",
        headers=headers,
    )
    assert again.status_code == 201, again.text
    assert again.json() == original
    assert mshop.count() == count


def test_without_a_key_each_post_creates(mshop: Shop) -> None:
    body = {"name": unique("Cat")}
    first = accepted(mshop.send("POST", CATEGORIES, body), 201)
    second = accepted(mshop.send("POST", CATEGORIES, body), 201)
    assert first["id"] != second["id"]


def test_keys_are_per_restaurant(pair: Pair) -> None:
    main, other = pair.main, pair.other
    key, body = _key(), {"name": "Soups"}
    mine = accepted(main.send("POST", CATEGORIES, body, headers={"Idempotency-Key": key}), 201)
    counts = (main.count(), other.count())
    theirs_response = other.send("POST", CATEGORIES, body, headers={"Idempotency-Key": key})
    theirs = accepted(theirs_response, 201)
    assert "idempotent-replayed" not in theirs_response.headers
    assert theirs["id"] != mine["id"]
    assert (main.count(), other.count()) == (counts[0], counts[1] + 1)
    assert other.stream(theirs["id"])[0].restaurant_id == other.restaurant_id
    assert main.stream(theirs["id"]) == []
    # and a different body under that key in the other restaurant is that restaurant's business
    problem(
        other.send("POST", CATEGORIES, {"name": "Salads"}, headers={"Idempotency-Key": key}), 422
    )
    replay = main.send("POST", CATEGORIES, body, headers={"Idempotency-Key": key})
    assert replay.json() == mine
    assert replay.headers["idempotent-replayed"] == "true"


def test_keys_are_shared_by_the_restaurants_principals(mshop: Shop) -> None:
    """Keys belong to the restaurant, not to whoever sent the first request."""
    assert mshop.pos is not None
    assert mshop.staff is not None
    key, body = _key(), {"items": [{"menu_item_id": mshop.item(), "quantity": 1}]}
    first = accepted(
        mshop.send("POST", ORDERS, body, mshop.pos, headers={"Idempotency-Key": key}), 201
    )
    count = mshop.count()
    again = mshop.send("POST", ORDERS, body, mshop.staff, headers={"Idempotency-Key": key})
    assert again.status_code == 201
    assert again.json() == first
    assert mshop.count() == count


def test_a_key_reused_on_another_endpoint_is_422(mshop: Shop) -> None:
    key = _key()
    accepted(
        mshop.send("POST", CATEGORIES, {"name": unique("Cat")}, headers={"Idempotency-Key": key}),
        201,
    )
    body = {"items": [{"menu_item_id": mshop.item(), "quantity": 1}]}
    count = mshop.count()
    problem(mshop.send("POST", ORDERS, body, headers={"Idempotency-Key": key}), 422)
    assert mshop.count() == count


def test_adding_a_line_with_a_key_is_retry_safe(shop: Shop) -> None:
    order_id = shop.place(shop.item())["id"]
    body, key = {"menu_item_id": shop.item(), "quantity": 2}, _key()
    first = accepted(
        shop.send("POST", f"{ORDERS}/{order_id}/items", body, headers={"Idempotency-Key": key}),
        version=2,
    )
    again = shop.send("POST", f"{ORDERS}/{order_id}/items", body, headers={"Idempotency-Key": key})
    assert again.status_code == 200
    assert again.json() == first
    assert again.json()["line_id"] == first["line_id"]
    assert shop.types(order_id) == ["OrderPlaced", "OrderItemAdded"]


def test_a_retry_replays_even_when_the_command_would_now_be_refused(shop: Shop) -> None:
    """The order was paid after the line was added: the retry still gets the first answer."""
    item = shop.item()
    order_id = shop.place(item)["id"]
    path, body, key = f"{ORDERS}/{order_id}/items", {"menu_item_id": item, "quantity": 1}, _key()
    first = accepted(shop.send("POST", path, body, headers={"Idempotency-Key": key}), version=2)
    for step in ("start", "ready", "serve"):
        accepted(shop.send("POST", f"{ORDERS}/{order_id}/{step}"))
    total = shop.order_state(order_id).total_cents
    accepted(
        shop.send("POST", f"{ORDERS}/{order_id}/pay", {"method": "card", "amount_cents": total})
    )
    count = shop.count()

    again = shop.send("POST", path, body, headers={"Idempotency-Key": key})

    assert again.status_code == 200, again.text
    assert again.json() == first
    assert again.headers["idempotent-replayed"] == "true"
    problem(shop.send("POST", path, {**body, "quantity": 3}, headers={"Idempotency-Key": key}), 422)
    assert shop.count() == count


def test_a_retry_with_a_stale_if_match_replays(shop: Shop) -> None:
    order_id = shop.place(shop.item())["id"]
    headers = {"Idempotency-Key": _key(), "If-Match": '"1"'}
    first = accepted(shop.send("POST", f"{ORDERS}/{order_id}/start", headers=headers), version=2)

    again = shop.send("POST", f"{ORDERS}/{order_id}/start", headers=headers)

    assert again.status_code == 200, again.text
    assert again.json() == first
    assert again.headers["idempotent-replayed"] == "true"
    assert shop.types(order_id) == ["OrderPlaced", "OrderPreparationStarted"]


def test_a_failed_command_records_no_key(mshop: Shop) -> None:
    """A refused command appended nothing, so the fixed retry under the same key goes through."""
    item = mshop.item(available=False)
    key, body = _key(), {"items": [{"menu_item_id": item, "quantity": 1}]}
    problem(mshop.send("POST", ORDERS, body, headers={"Idempotency-Key": key}), 409)
    accepted(mshop.send("POST", f"{ITEMS}/{item}/availability", {"is_available": True}))
    response = mshop.send("POST", ORDERS, body, headers={"Idempotency-Key": key})
    accepted(response, 201)
    assert "idempotent-replayed" not in response.headers


# -- event metadata -------------------------------------------------------------------------


def _new_events(shop: Shop, after: int) -> list[Any]:
    found = shop.events(after)
    assert found, "the command appended nothing"
    return found


def test_metadata_names_the_request_and_the_user(shop: Shop) -> None:
    after = shop.head()
    response = shop.send(
        "POST",
        ITEMS,
        {"name": unique("Item"), "category_id": shop.category(), "price_cents": 100},
        headers={"X-Request-ID": "abc-123"},
    )
    accepted(response, 201)
    assert response.headers["x-request-id"] == "abc-123"
    recorded = [e for e in _new_events(shop, after) if e.type != "CategoryCreated"]
    assert [e.type for e in recorded] == ["MenuItemAdded", "CategoryItemAttached"]
    for event in recorded:
        assert event.metadata["correlation_id"] == "abc-123"
        assert event.metadata["request_id"] == "abc-123"
        assert event.metadata["actor"] == f"user:{shop.owner_id}"


def test_metadata_names_the_pos_key(shop: Shop) -> None:
    assert shop.pos is not None
    item = shop.item()
    after = shop.head()
    response = shop.send(
        "POST",
        ORDERS,
        {"items": [{"menu_item_id": item, "quantity": 1}]},
        shop.pos,
        headers={"X-Request-ID": "pos-req-42"},
    )
    accepted(response, 201)
    (event,) = _new_events(shop, after)
    assert event.type == "OrderPlaced"
    assert event.metadata["correlation_id"] == "pos-req-42"
    assert event.metadata["request_id"] == "pos-req-42"
    assert event.metadata["actor"] == f"api_key:{shop.pos_key_id}"


def test_metadata_names_staff_and_a_generated_request_id(shop: Shop) -> None:
    assert shop.staff is not None
    order_id = shop.place(shop.item())["id"]
    after = shop.head()
    response = shop.send("POST", f"{ORDERS}/{order_id}/start", None, shop.staff)
    accepted(response, version=2)
    generated = response.headers["x-request-id"]
    uuid.UUID(generated)
    (event,) = _new_events(shop, after)
    assert event.metadata["correlation_id"] == generated
    assert event.metadata["request_id"] == generated
    assert event.metadata["actor"] == f"user:{shop.staff_id}"


def test_an_insane_request_id_is_replaced(mshop: Shop) -> None:
    after = mshop.head()
    response = mshop.send(
        "POST",
        CATEGORIES,
        {"name": unique("Cat")},
        headers={"X-Request-ID": "bad id with spaces <script>"},
    )
    accepted(response, 201)
    (event,) = _new_events(mshop, after)
    assert (
        event.metadata["request_id"]
        == response.headers["x-request-id"]
        != ("bad id with spaces <script>")
    )
