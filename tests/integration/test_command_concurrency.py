"""Commands racing each other on MariaDB, through the real app over HTTP, from many threads.

Every thread has its own TestClient and a barrier releases them together. Whatever the
interleaving, the event streams must stay valid, every accepted command must have its event,
and every refused one must be a 409 or 412: never a 5xx.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from coffeeshop.api.app import create_app
from coffeeshop.commands import category as category_aggregate
from coffeeshop.commands import menu_item as menu_item_aggregate
from coffeeshop.commands import order as order_aggregate
from coffeeshop.commands.order import CLOSED, EDITABLE, Status
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.orders import OrderCancelled, OrderItemAdded, OrderPaid
from coffeeshop.events.registry import registry
from coffeeshop.events.schema import idempotency_keys
from coffeeshop.events.store import EventStore
from tests.conftest import make_settings

pytestmark = pytest.mark.mysql

PASSWORD = "correct horse battery staple"
ORDERS = "/api/v1/orders"

Call = Callable[[TestClient], httpx.Response]


@dataclass
class Restaurant:
    app: FastAPI
    client: TestClient
    restaurant_id: str
    headers: dict[str, str]

    @property
    def store(self) -> EventStore:
        store: EventStore = self.app.state.container.store
        return store

    def events(self) -> list[RecordedEvent]:
        return self.store.read_restaurant(self.restaurant_id, 0, limit=100_000)

    def stream(self, stream_id: str) -> list[RecordedEvent]:
        return self.store.load_stream(self.restaurant_id, stream_id)

    def post(self, path: str, body: Any = None) -> dict[str, Any]:
        response = self.client.post(path, json=body, headers=self.headers)
        assert response.status_code in (200, 201), response.text
        result: dict[str, Any] = response.json()
        return result

    def category(self) -> str:
        return str(
            self.post("/api/v1/menu/categories", {"name": f"Cat {uuid.uuid4().hex[:6]}"})["id"]
        )

    def item(self, category_id: str, price_cents: int = 300) -> str:
        body = {
            "name": f"Item {uuid.uuid4().hex[:6]}",
            "category_id": category_id,
            "price_cents": price_cents,
        }
        return str(self.post("/api/v1/menu/items", body)["id"])

    def order(self, item_id: str, steps: tuple[str, ...] = ()) -> str:
        order_id = str(
            self.post(ORDERS, {"items": [{"menu_item_id": item_id, "quantity": 2}]})["id"]
        )
        for step in steps:
            self.post(f"{ORDERS}/{order_id}/{step}")
        return order_id


@pytest.fixture(scope="module")
def app(mysql_engine: Engine) -> Iterator[tuple[FastAPI, TestClient]]:
    application = create_app(make_settings())
    with TestClient(application) as client:
        yield application, client


@pytest.fixture(scope="module")
def shop(app: tuple[FastAPI, TestClient]) -> Restaurant:
    application, client = app
    email = f"race-{uuid.uuid4().hex[:12]}@example.com"
    signed = client.post(
        "/api/v1/signup",
        json={"restaurant_name": "Race Café", "email": email, "password": PASSWORD},
    )
    assert signed.status_code == 201, signed.text
    token = client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return Restaurant(application, client, signed.json()["restaurant_id"], headers)


def concurrently(app: FastAPI, calls: list[Call]) -> list[httpx.Response]:
    """Run every call at once, each in its own thread with its own client."""
    barrier = threading.Barrier(len(calls))

    def run(call: Call) -> httpx.Response:
        client = TestClient(app, raise_server_exceptions=False)
        barrier.wait(timeout=30)
        return call(client)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def _send(method: str, path: str, headers: dict[str, str], body: Any = None) -> Call:
    def call(client: TestClient) -> httpx.Response:
        response: httpx.Response = client.request(method, path, json=body, headers=headers)
        return response

    return call


def _post(path: str, headers: dict[str, str], body: Any = None) -> Call:
    return _send("POST", path, headers, body)


def _assert_valid_order_stream(events: list[RecordedEvent]) -> order_aggregate.Order:
    """Replays the stream, checking each event was allowed in the state before it."""
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    state = order_aggregate.Order()
    for recorded in events:
        event = recorded.decode(registry)
        assert state.status not in CLOSED, f"{recorded.type} after the order was closed"
        if isinstance(event, OrderItemAdded):
            assert state.status in EDITABLE, f"line added to a {state.status} order"
        if isinstance(event, OrderPaid):
            assert state.status is Status.SERVED
            assert event.amount_cents == state.total_cents
        if isinstance(event, OrderCancelled):
            assert state.status is not Status.NONE
        state = order_aggregate.evolve(state, event)
    return state


def _race_on_one_order(
    shop: Restaurant, steps: tuple[str, ...], mix: dict[str, int]
) -> tuple[order_aggregate.Order, Counter[str], list[RecordedEvent]]:
    category_id = shop.category()
    item_id = shop.item(category_id, price_cents=250)
    extra_item = shop.item(category_id, price_cents=100)
    order_id = shop.order(item_id, steps)
    version = len(shop.stream(order_id))
    total = 500
    calls: list[Call] = []
    kinds: list[str] = []
    for kind, how_many in mix.items():
        for n in range(how_many):
            headers = dict(shop.headers)
            if n % 4 == 3:  # some callers pin the version they saw
                headers["If-Match"] = f'"{version}"'
            bodies: dict[str, dict[str, Any]] = {
                "pay": {"method": "card", "amount_cents": total, "tip_cents": n},
                "cancel": {"reason": f"race {n}"},
                "items": {"menu_item_id": extra_item, "quantity": 1},
            }
            body = bodies[kind]
            calls.append(_post(f"{ORDERS}/{order_id}/{kind}", headers, body))
            kinds.append(kind)

    responses = concurrently(shop.app, calls)

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 409, 412}, statuses
    events = shop.stream(order_id)
    state = _assert_valid_order_stream(events)
    accepted: Counter[str] = Counter()
    versions = []
    expected_type = {"pay": "OrderPaid", "cancel": "OrderCancelled", "items": "OrderItemAdded"}
    for kind, response in zip(kinds, responses, strict=True):
        if response.status_code == 200:
            accepted[kind] += 1
            body = response.json()
            versions.append(body["version"])
            assert events[body["version"] - 1].type == expected_type[kind], body
        else:
            assert response.headers["content-type"].startswith("application/problem+json")
    assert len(versions) == len(set(versions)), "two accepted commands claim one version"
    appended = Counter(e.type for e in events[version:])
    assert appended == Counter({expected_type[k]: n for k, n in accepted.items()}), (
        appended,
        accepted,
    )
    return state, accepted, events


def test_pay_cancel_and_add_item_race_on_a_served_order(shop: Restaurant) -> None:
    state, accepted, _ = _race_on_one_order(
        shop, ("start", "ready", "serve"), {"pay": 18, "cancel": 17, "items": 15}
    )
    assert accepted["pay"] + accepted["cancel"] == 1, accepted  # exactly one closes it
    assert accepted["items"] == 0
    assert state.status in (Status.PAID, Status.CANCELLED)
    if state.status is Status.PAID:
        assert state.paid_cents == state.total_cents == 500


def test_pay_cancel_and_add_item_race_on_a_pending_order(shop: Restaurant) -> None:
    state, accepted, events = _race_on_one_order(shop, (), {"items": 40, "cancel": 3, "pay": 7})
    assert accepted["pay"] == 0  # a pending order cannot be paid
    assert accepted["cancel"] <= 1
    assert len(state.lines) == 1 + accepted["items"]
    assert state.status is (Status.CANCELLED if accepted["cancel"] else Status.PENDING)
    if accepted["cancel"]:
        assert events[-1].type == "OrderCancelled"


def test_a_hundred_retries_of_one_order_place_it_once(shop: Restaurant) -> None:
    item_id = shop.item(shop.category())
    key = f"retry-{uuid.uuid4()}"
    body = {"customer_name": "Ann", "items": [{"menu_item_id": item_id, "quantity": 1}]}
    placed_before = sum(e.type == "OrderPlaced" for e in shop.events())
    headers = {**shop.headers, "Idempotency-Key": key}

    responses = concurrently(shop.app, [_post(ORDERS, headers, body) for _ in range(100)])

    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, statuses
    for response in responses:
        if response.status_code == 409:
            assert "retry-after" in response.headers
    created = [r.json() for r in responses if r.status_code == 201]
    assert created, statuses
    assert all(body == created[0] for body in created), "every retry sees the same order"
    placed = [e for e in shop.events() if e.type == "OrderPlaced"]
    assert len(placed) == placed_before + 1
    assert placed[-1].stream_id == created[0]["id"]
    with shop.app.state.container.engine.connect() as conn:
        keys = conn.execute(
            select(func.count())
            .select_from(idempotency_keys)
            .where(
                idempotency_keys.c.restaurant_id == shop.restaurant_id,
                idempotency_keys.c.idempotency_key == key,
            )
        ).scalar_one()
    assert keys == 1


def _category_state(shop: Restaurant, category_id: str) -> category_aggregate.Category:
    state = category_aggregate.Category()
    for recorded in shop.stream(category_id):
        state = category_aggregate.evolve(state, recorded.decode(registry))
    return state


def _item_state(shop: Restaurant, item_id: str) -> menu_item_aggregate.MenuItem:
    state = menu_item_aggregate.MenuItem()
    for recorded in shop.stream(item_id):
        state = menu_item_aggregate.evolve(state, recorded.decode(registry))
    return state


def _live_items_in(shop: Restaurant, category_id: str) -> list[str]:
    """Every non-archived item whose own stream says it is in ``category_id``."""
    item_ids = {e.stream_id for e in shop.events() if e.type == "MenuItemAdded"}
    return [
        item_id
        for item_id in sorted(item_ids)
        if (state := _item_state(shop, item_id)).category_id == category_id and not state.archived
    ]


@pytest.mark.parametrize("round_", range(3))
def test_adding_items_races_removing_their_category(shop: Restaurant, round_: int) -> None:
    category_id = shop.category()
    add = {"category_id": category_id, "price_cents": 100}
    calls = [
        _post("/api/v1/menu/items", shop.headers, {**add, "name": f"Race {round_}.{n}"})
        for n in range(9)
    ]
    removals = [
        _send("DELETE", f"/api/v1/menu/categories/{category_id}", shop.headers) for _ in range(3)
    ]
    calls[2:2] = removals[:1]
    calls[6:6] = removals[1:]

    responses = concurrently(shop.app, calls)

    assert {r.status_code for r in responses} <= {200, 201, 404, 409}, [
        (r.status_code, r.text) for r in responses
    ]
    removed = [r for r in responses if r.request.method == "DELETE" and r.status_code == 200]
    added = [r for r in responses if r.request.method == "POST" and r.status_code == 201]
    assert len(removed) <= 1
    state = _category_state(shop, category_id)
    live = _live_items_in(shop, category_id)
    assert sorted(live) == sorted(r.json()["id"] for r in added)
    if state.removed:
        assert removed
        assert live == [], "a removed category still holds items"
        assert state.item_ids == frozenset()
    else:
        assert not removed
        assert state.item_ids == frozenset(live)


def test_moving_items_races_removing_the_target_category(shop: Restaurant) -> None:
    source, target = shop.category(), shop.category()
    items = [shop.item(source) for _ in range(6)]
    calls = [
        _send("PATCH", f"/api/v1/menu/items/{item_id}", shop.headers, {"category_id": target})
        for item_id in items
    ]
    calls[3:3] = [
        _send("DELETE", f"/api/v1/menu/categories/{target}", shop.headers) for _ in range(3)
    ]

    responses = concurrently(shop.app, calls)

    assert {r.status_code for r in responses} <= {200, 404, 409}, [
        (r.status_code, r.text) for r in responses
    ]
    state = _category_state(shop, target)
    live = _live_items_in(shop, target)
    if state.removed:
        assert live == [], "a removed category still holds items"
    else:
        assert state.item_ids == frozenset(live)
    assert frozenset(_live_items_in(shop, source)) == _category_state(shop, source).item_ids


class Background:
    """Keeps sending one kind of request from another thread until stopped."""

    def __init__(self, app: FastAPI, make_call: Callable[[int], Call]) -> None:
        self._app, self._make_call = app, make_call
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.statuses: Counter[int] = Counter()

    def _run(self) -> None:
        client = TestClient(self._app, raise_server_exceptions=False)
        n = 0
        while not self._stop.is_set():
            self.statuses[self._make_call(n)(client).status_code] += 1
            n += 1

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def test_if_match_on_an_item_ignores_changes_to_its_category(shop: Restaurant) -> None:
    """Archiving item X with ``If-Match`` = X's version must not fail because another item
    joined X's category meanwhile: the precondition is about X, and X did not change."""
    category_id = shop.category()
    items = [shop.item(category_id) for _ in range(20)]
    new_item = {"category_id": category_id, "price_cents": 100}
    wrong: list[tuple[int, str | None, str]] = []

    def add_items(n: int) -> Call:
        return _post("/api/v1/menu/items", shop.headers, {**new_item, "name": f"Busy {n}"})

    with Background(shop.app, add_items) as noise:
        for item_id in items:
            response = shop.client.delete(
                f"/api/v1/menu/items/{item_id}", headers={**shop.headers, "If-Match": '"1"'}
            )
            if response.status_code != 200:
                wrong.append((response.status_code, response.headers.get("etag"), item_id))
    assert noise.statuses[201] > 0
    assert wrong == [], (
        'DELETE /menu/items/{id} with If-Match: "1" (the item\'s real version) answered '
        f"412 while the item was still at version 1: {wrong[:3]} "
        f"(item versions: {[len(shop.stream(i)) for _, _, i in wrong[:3]]})"
    )


def test_if_match_on_an_order_ignores_changes_to_the_menu_item(shop: Restaurant) -> None:
    """Adding a line with ``If-Match`` = the order's version must not fail because the menu
    item's price changed meanwhile: the precondition is about the order."""
    item_id = shop.item(shop.category())
    order_id = shop.order(item_id)
    version = 1
    wrong: list[tuple[int, str | None, int]] = []

    def reprice(n: int) -> Call:
        return _send(
            "PATCH", f"/api/v1/menu/items/{item_id}", shop.headers, {"price_cents": 100 + n % 50}
        )

    with Background(shop.app, reprice) as noise:
        for _ in range(20):
            response = shop.client.post(
                f"{ORDERS}/{order_id}/items",
                json={"menu_item_id": item_id, "quantity": 1},
                headers={**shop.headers, "If-Match": f'"{version}"'},
            )
            if response.status_code == 200:
                version = response.json()["version"]
            else:
                wrong.append((response.status_code, response.headers.get("etag"), version))
    assert noise.statuses[200] > 0
    assert len(shop.stream(order_id)) == version
    assert wrong == [], (
        "POST /orders/{id}/items with If-Match equal to the order's version answered "
        f"(status, ETag, order version) {wrong[:3]}"
    )
