"""Order queries over HTTP: GET /orders, /orders/{id} and /orders/{id}/history.

Given orders placed and moved through the command endpoints, and the projections caught up
from the store (deterministic: no background projectors), then the read side answers with the
documented shapes, filters, pages, ETags, 404s and read-your-writes behaviour.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from coffeeshop.api.app import create_app
from coffeeshop.api.container import Container, build_container
from coffeeshop.api.db import make_engine
from coffeeshop.migrations.runner import upgrade
from coffeeshop.projections import order_history, orders
from coffeeshop.projections.projector import Projector
from tests.conftest import make_settings
from tests.e2e.helpers import Tenant, assert_problem, error_locs, new_tenant

ORDER_FIELDS = {
    "id",
    "status",
    "table_id",
    "customer_name",
    "notes",
    "lines",
    "total_cents",
    "tip_cents",
    "paid_cents",
    "payment_method",
    "created_at",
    "updated_at",
    "started_at",
    "ready_at",
    "served_at",
    "paid_at",
    "cancelled_at",
    "cancel_reason",
    "version",
}
LINE_FIELDS = {
    "line_id",
    "menu_item_id",
    "name",
    "unit_price_cents",
    "quantity",
    "notes",
    "line_total_cents",
}
STEPS = {
    "pending": [],
    "preparing": ["start"],
    "ready": ["start", "ready"],
    "served": ["start", "ready", "serve"],
    "paid": ["start", "ready", "serve", "pay"],
    "cancelled": ["cancel"],
}


def project(client: TestClient) -> None:
    """What the projector process does: catch both order read models up with the store."""
    container: Container = client.app.state.container  # type: ignore[attr-defined]
    for module in (orders, order_history):
        Projector(module.build(), container.engine, container.store).catch_up()


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() == timedelta(0), value
    return moment


@dataclass
class Cafe:
    """A fresh restaurant reached over HTTP: its owner, a POS key, a menu and a table."""

    owner: Tenant
    pos: dict[str, str] = field(default_factory=dict)
    items: list[str] = field(default_factory=list)
    table_id: str = ""

    @property
    def client(self) -> TestClient:
        return self.owner.client

    def post(self, path: str, body: Any = None, **headers: str) -> httpx.Response:
        response: httpx.Response = self.client.post(
            f"/api/v1{path}", json=body, headers={**self.owner.headers, **headers}
        )
        assert response.status_code in {200, 201}, response.text
        return response

    def get(self, path: str, who: dict[str, str] | None = None, **params: Any) -> httpx.Response:
        headers = self.owner.headers if who is None else who
        response: httpx.Response = self.client.get(f"/api/v1{path}", params=params, headers=headers)
        return response

    def place(self, *quantities: int, **fields: Any) -> dict[str, Any]:
        items = [
            {"menu_item_id": item, "quantity": quantity}
            for item, quantity in zip(self.items, quantities or (1,), strict=False)
        ]
        placed: dict[str, Any] = self.post("/orders", {"items": items, **fields}).json()
        return placed

    def drive(self, order_id: str, *steps: str) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for step in steps:
            payload: Any = None
            if step == "pay":
                project(self.client)
                total = self.get(f"/orders/{order_id}").json()["total_cents"]
                payload = {"method": "cash", "amount_cents": total, "tip_cents": 100}
            elif step == "cancel":
                payload = {"reason": "customer left"}
            body = self.post(f"/orders/{order_id}/{step}", payload).json()
        return body

    def order_in(self, status: str, **fields: Any) -> str:
        order_id: str = self.place(1, **fields)["id"]
        self.drive(order_id, *STEPS[status])
        return order_id

    def pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a cursor walk, checking each page's envelope on the way."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = self.get(path, **query).json()
            assert len(page["items"]) <= page["limit"]
            found += page["items"]
            cursor = page["next_cursor"]
            assert page["has_more"] == (cursor is not None)
            if cursor is None:
                return found


def open_cafe(client: TestClient, prices: tuple[int, ...] = (350, 420, 275)) -> Cafe:
    cafe = Cafe(new_tenant(client, restaurant_name="Query Café"))
    key = cafe.post("/api-keys", {"name": "Till"}).json()
    cafe.pos = {"X-API-Key": key["key"]}
    category = cafe.post("/menu/categories", {"name": "Coffee"}).json()["id"]
    for index, price in enumerate(prices):
        body = {"name": f"Drink {index}", "category_id": category, "price_cents": price}
        cafe.items.append(cafe.post("/menu/items", body).json()["id"])
    cafe.table_id = cafe.post("/tables", {"label": "T1", "seats": 2}).json()["id"]
    return cafe


@pytest.fixture(scope="module")
def cafe(mysql_client: TestClient) -> Cafe:
    """Shared by the tests that only add their own orders and look at those."""
    return open_cafe(mysql_client)


@pytest.fixture(scope="module")
def menu_of_statuses(mysql_client: TestClient) -> tuple[Cafe, dict[str, list[str]]]:
    """A restaurant with two orders in every status (the first at the table), nothing else."""
    cafe = open_cafe(mysql_client)
    made: dict[str, list[str]] = {status: [] for status in STEPS}
    for status in STEPS:
        made[status].append(cafe.order_in(status, table_id=cafe.table_id))
        made[status].append(cafe.order_in(status))
    project(mysql_client)
    return cafe, made


@pytest.fixture(scope="module")
def quick(mysql_engine: object) -> Iterator[TestClient]:
    """The app with CONSISTENCY_TIMEOUT_MS=50: a stale read answers almost at once."""
    with TestClient(create_app(make_settings(consistency_timeout_ms=50))) as client:
        yield client


# -- one order ----------------------------------------------------------------------------------


def test_an_order_after_its_whole_life(cafe: Cafe) -> None:
    placed = cafe.place(
        2, 1, table_id=cafe.table_id, customer_name="Zoë O'Neil", notes=" oat milk "
    )
    order_id = placed["id"]
    added = cafe.post(f"/orders/{order_id}/items", {"menu_item_id": cafe.items[2], "quantity": 3})
    project(cafe.client)
    first_line = cafe.get(f"/orders/{order_id}").json()["lines"][0]["line_id"]
    removed = cafe.client.delete(
        f"/api/v1/orders/{order_id}/items/{first_line}", headers=cafe.owner.headers
    )
    assert removed.status_code == 200, removed.text
    paid = cafe.drive(order_id, "start", "ready", "serve", "pay")
    project(cafe.client)

    response = cafe.get(f"/orders/{order_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == ORDER_FIELDS
    assert body["version"] == paid["version"] == 7
    assert response.headers["etag"] == f'"{body["version"]}"'
    assert body["id"] == order_id
    assert (body["status"], body["table_id"]) == ("paid", cafe.table_id)
    assert (body["customer_name"], body["notes"]) == ("Zoë O'Neil", "oat milk")
    assert [set(line) for line in body["lines"]] == [LINE_FIELDS] * 2
    assert [(line["menu_item_id"], line["quantity"]) for line in body["lines"]] == [
        (cafe.items[1], 1),
        (cafe.items[2], 3),
    ]
    assert body["lines"][1]["line_id"] == added.json()["line_id"]
    assert body["lines"][1]["line_total_cents"] == 3 * 275
    assert body["total_cents"] == body["paid_cents"] == 420 + 3 * 275
    assert (body["tip_cents"], body["payment_method"]) == (100, "cash")
    assert body["cancelled_at"] is body["cancel_reason"] is None
    times = [
        parse_time(body[name])
        for name in ("created_at", "started_at", "ready_at", "served_at", "paid_at")
    ]
    assert times == sorted(times)
    assert parse_time(body["updated_at"]) == times[-1]


def test_a_new_order_has_no_later_timestamps_and_a_pos_can_read_it(cafe: Cafe) -> None:
    order_id = cafe.place(1)["id"]
    project(cafe.client)
    for who in (cafe.pos, cafe.owner.headers):
        body = cafe.get(f"/orders/{order_id}", who=who).json()
        assert body["status"] == "pending"
        assert body["created_at"] == body["updated_at"]
        for name in ("started_at", "ready_at", "served_at", "paid_at", "cancelled_at"):
            assert body[name] is None
        assert (body["table_id"], body["customer_name"], body["payment_method"]) == (None,) * 3
        assert body["created_at"].endswith(("Z", "+00:00"))


def test_a_cancelled_order_shows_why_and_when(cafe: Cafe) -> None:
    order_id = cafe.order_in("cancelled")
    project(cafe.client)
    body = cafe.get(f"/orders/{order_id}").json()
    assert (body["status"], body["cancel_reason"], body["version"]) == (
        "cancelled",
        "customer left",
        2,
    )
    assert body["cancelled_at"] == body["updated_at"]


def test_another_restaurants_order_is_404(cafe: Cafe, mysql_other: Tenant) -> None:
    order_id = cafe.order_in("preparing")
    project(cafe.client)
    for path in (f"/orders/{order_id}", f"/orders/{order_id}/history"):
        assert cafe.get(path).status_code == 200
        assert_problem(cafe.get(path, who=mysql_other.headers), 404)
        assert_problem(cafe.get(path.replace(order_id, str(uuid.uuid4()))), 404)
    assert_problem(cafe.get("/orders/not-a-uuid"), 422)
    listed = cafe.get("/orders", who=mysql_other.headers).json()
    assert order_id not in {item["id"] for item in listed["items"]}


def test_reading_orders_needs_credentials(cafe: Cafe) -> None:
    assert cafe.client.get("/api/v1/orders").status_code == 401
    assert cafe.client.get(f"/api/v1/orders/{uuid.uuid4()}/history").status_code == 401


# -- history ------------------------------------------------------------------------------------


def test_history_lists_events_oldest_first_with_who_and_when(cafe: Cafe) -> None:
    items = [{"menu_item_id": cafe.items[0], "quantity": 1}]
    placed = cafe.client.post(
        "/api/v1/orders", json={"items": items}, headers={**cafe.pos, "X-Request-ID": "till-1"}
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]
    cafe.post(f"/orders/{order_id}/start", **{"X-Request-ID": "kitchen-7"})
    cafe.post(f"/orders/{order_id}/cancel", {"reason": "burnt"})
    project(cafe.client)

    page = cafe.get(f"/orders/{order_id}/history").json()
    assert (page["total"], page["skip"], page["has_more"], page["next_cursor"]) == (
        3,
        0,
        False,
        None,
    )
    entries = page["items"]
    assert [e["type"] for e in entries] == [
        "OrderPlaced",
        "OrderPreparationStarted",
        "OrderCancelled",
    ]
    assert [e["version"] for e in entries] == [1, 2, 3]
    assert [e["position"] for e in entries] == sorted(e["position"] for e in entries)
    assert entries[0]["actor"].startswith("api_key:")
    assert entries[1]["actor"] == entries[2]["actor"] == f"user:{cafe.owner.user_id}"
    assert [e["request_id"] for e in entries[:2]] == ["till-1", "kitchen-7"]
    assert entries[2]["request_id"]  # the server made one up
    assert entries[0]["data"]["order_id"] == order_id
    assert entries[2]["data"]["reason"] == "burnt"
    times = [parse_time(e["recorded_at"]) for e in entries]
    assert times == sorted(times)

    second = cafe.get(f"/orders/{order_id}/history", skip=1, limit=1).json()
    assert [e["version"] for e in second["items"]] == [2]
    assert second["has_more"] is True
    walked = cafe.pages(f"/orders/{order_id}/history", limit=1)
    assert walked == entries


# -- lists --------------------------------------------------------------------------------------


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


def test_the_list_filters_by_status_table_and_time(
    menu_of_statuses: tuple[Cafe, dict[str, list[str]]],
) -> None:
    cafe, made = menu_of_statuses
    everything = cafe.get("/orders", limit=50).json()
    assert everything["total"] == 12
    assert {item["id"] for item in everything["items"]} == {i for v in made.values() for i in v}
    assert all(set(item) == ORDER_FIELDS for item in everything["items"])

    for status, expected in made.items():
        response = cafe.get("/orders", status=status)
        assert set(ids(response)) == set(expected), status
        assert response.json()["total"] == 2
    both = cafe.get("/orders", status=["ready", "paid"])
    assert set(ids(both)) == {*made["ready"], *made["paid"]}
    assert both.json()["total"] == 4

    at_table = cafe.get("/orders", table_id=cafe.table_id, limit=50)
    assert set(ids(at_table)) == {v[0] for v in made.values()}
    assert at_table.json()["total"] == 6
    served_at_table = cafe.get("/orders", table_id=cafe.table_id, status="served")
    assert ids(served_at_table) == [made["served"][0]]
    assert cafe.get("/orders", table_id=str(uuid.uuid4())).json()["total"] == 0

    oldest_first = list(reversed(everything["items"]))
    middle = oldest_first[4]["created_at"]
    since = cafe.get("/orders", created_from=middle, limit=50)
    assert ids(since) == [item["id"] for item in everything["items"][:8]]
    assert since.json()["total"] == 8
    before = cafe.get("/orders", created_to=middle, sort="created_at", limit=50)
    assert ids(before) == [item["id"] for item in oldest_first[:4]]
    window = cafe.get("/orders", created_from=middle, created_to=middle)
    assert (ids(window), window.json()["total"]) == ([], 0)


def test_both_sorts_and_offset_pages(menu_of_statuses: tuple[Cafe, dict[str, list[str]]]) -> None:
    cafe, _ = menu_of_statuses
    newest = cafe.get("/orders", limit=50).json()["items"]
    oldest = cafe.get("/orders", sort="created_at", limit=50).json()["items"]
    assert oldest == list(reversed(newest))
    keys = [(parse_time(item["created_at"]), item["id"]) for item in oldest]
    assert keys == sorted(keys)
    assert len(set(keys)) == 12

    default = cafe.get("/orders").json()
    assert (default["skip"], default["limit"], default["has_more"]) == (0, 20, False)
    pages = [cafe.get("/orders", skip=skip, limit=5).json() for skip in (0, 5, 10, 15)]
    assert [p["has_more"] for p in pages] == [True, True, False, False]
    assert [p["total"] for p in pages] == [12] * 4
    assert [item["id"] for p in pages for item in p["items"]] == [i["id"] for i in newest]
    assert pages[0]["next_cursor"] is not None
    assert pages[3]["items"] == []


@pytest.mark.parametrize("sort", ["created_at", "-created_at"])
def test_a_cursor_walk_sees_every_order_once_while_orders_arrive(
    mysql_client: TestClient, sort: str
) -> None:
    cafe = open_cafe(mysql_client)
    before = [cafe.place(1)["id"] for _ in range(7)]
    project(mysql_client)
    seen: list[dict[str, Any]] = []
    arrived: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, "sort": sort}
        if cursor:
            params["cursor"] = cursor
        page = cafe.get("/orders", **params).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        arrived.append(cafe.place(1)["id"])  # lands after the cursor in time
        project(mysql_client)
    walked = [item["id"] for item in seen]
    assert len(walked) == len(set(walked))
    keys = [(parse_time(item["created_at"]), item["id"]) for item in seen]
    assert keys == sorted(keys, reverse=sort == "-created_at")
    if sort == "created_at":
        assert walked == before + arrived  # newcomers come at the end, each once
    else:
        assert walked == list(reversed(before))  # newcomers are above the walk, never repeated


def test_cursor_pages_with_identical_timestamps(mysql_engine: object) -> None:
    """Orders placed in one instant: the id alone orders them, and the walk is still exact."""
    instant = datetime.now(UTC).replace(microsecond=123456)
    settings = make_settings()
    container = build_container(settings, clock=lambda: instant)
    with TestClient(create_app(settings, container=container)) as client:
        cafe = open_cafe(client, prices=(500,))
        placed = [cafe.place(1)["id"] for _ in range(7)]
        project(client)
        for sort in ("created_at", "-created_at"):
            walked = [item["id"] for item in cafe.pages("/orders", limit=2, sort=sort)]
            assert walked == sorted(placed, reverse=sort == "-created_at")
        first = cafe.get("/orders", limit=3, status="pending").json()
        rest = cafe.get("/orders", limit=50, status="pending", cursor=first["next_cursor"]).json()
        assert [i["id"] for i in first["items"] + rest["items"]] == sorted(placed, reverse=True)
        assert rest["total"] == 7  # a status total comes from the counters, cursor or not


def test_a_cursor_with_a_time_filter_has_no_total(
    menu_of_statuses: tuple[Cafe, dict[str, list[str]]],
) -> None:
    cafe, _ = menu_of_statuses
    since = "2000-01-01T00:00:00Z"
    first = cafe.get("/orders", created_from=since, limit=5).json()
    assert first["total"] == 12
    second = cafe.get("/orders", created_from=since, limit=5, cursor=first["next_cursor"]).json()
    assert second["total"] is None
    assert len(second["items"]) == 5


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 51}, ["query", "limit"]),
        ({"skip": -1}, ["query", "skip"]),
        ({"status": "lost"}, ["query", "status", 0]),
        ({"status": ["ready", "eaten"]}, ["query", "status", 1]),
        ({"sort": "price"}, ["query", "sort"]),
        ({"table_id": "table-1"}, ["query", "table_id"]),
        ({"created_from": "yesterday"}, ["query", "created_from"]),
        (
            {"created_from": "2026-03-02T00:00:00Z", "created_to": "2026-03-01T00:00:00Z"},
            ["query", "created_from"],
        ),
        ({"created_from": "0001-01-01T00:00:00+05:00"}, ["query", "created_from"]),
        ({"cursor": "not-a-cursor"}, ["query", "cursor"]),
        ({"min_position": -1}, ["query", "min_position"]),
    ],
)
def test_bad_list_parameters_are_422(cafe: Cafe, params: dict[str, Any], loc: list[Any]) -> None:
    body = assert_problem(cafe.get("/orders", **params), 422)
    assert loc in error_locs(body)


def test_a_cursor_is_tied_to_its_sort_and_to_its_list(
    menu_of_statuses: tuple[Cafe, dict[str, list[str]]],
) -> None:
    cafe, made = menu_of_statuses
    cursor = cafe.get("/orders", limit=2).json()["next_cursor"]
    assert_problem(cafe.get("/orders", sort="created_at", cursor=cursor), 422)
    assert_problem(cafe.get(f"/orders/{made['paid'][0]}/history", cursor=cursor), 422)
    history = cafe.get(f"/orders/{made['paid'][0]}/history", limit=2).json()["next_cursor"]
    assert_problem(cafe.get("/orders", cursor=history), 422)
    assert_problem(cafe.get("/orders", cursor=cursor, skip=2), 422)


# -- read your writes ---------------------------------------------------------------------------


def test_min_position_beyond_the_projection_answers_stale_then_fresh(quick: TestClient) -> None:
    cafe = open_cafe(quick, prices=(300,))
    project(quick)
    placed = cafe.place(1)
    position = placed["position"]

    started = time.monotonic()
    listed = cafe.get("/orders", min_position=position)
    one = cafe.get(f"/orders/{placed['id']}", min_position=position)
    history = cafe.get(f"/orders/{placed['id']}/history", min_position=position)
    assert time.monotonic() - started < 2.0
    assert listed.status_code == 200
    assert listed.headers["x-projection-stale"] == "true"
    assert placed["id"] not in ids(listed)
    for response in (one, history):
        assert_problem(response, 404)
        assert response.headers["x-projection-stale"] == "true"

    project(quick)
    for path in ("/orders", f"/orders/{placed['id']}", f"/orders/{placed['id']}/history"):
        response = cafe.get(path, min_position=position)
        assert response.status_code == 200, response.text
        assert "x-projection-stale" not in response.headers
    assert cafe.get("/orders", min_position=position).json()["items"][0]["id"] == placed["id"]
    assert "x-projection-stale" not in cafe.get("/orders", min_position=0).headers


def test_min_position_waits_for_the_projection_to_catch_up(cafe: Cafe) -> None:
    placed = cafe.place(1)
    catching_up = threading.Timer(0.2, project, args=(cafe.client,))
    catching_up.start()
    try:
        response = cafe.get(f"/orders/{placed['id']}", min_position=placed["position"])
    finally:
        catching_up.join()
    assert response.status_code == 200, response.text
    assert "x-projection-stale" not in response.headers
    assert response.headers["etag"] == '"1"'


# -- SQLite ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_alone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app on a SQLite file of its own, read side off: projections run only when asked."""
    url = f"sqlite:///{tmp_path_factory.mktemp('order-queries') / 'app.db'}"
    settings = make_settings(database_url=url, redis_url=None)
    engine = make_engine(settings)
    upgrade(engine)
    engine.dispose()
    with TestClient(create_app(settings, read_side=False)) as client:
        yield client


def test_the_order_queries_work_on_sqlite(sqlite_alone: TestClient) -> None:
    cafe = open_cafe(sqlite_alone)
    paid = cafe.order_in("paid", table_id=cafe.table_id)
    pending = cafe.order_in("pending")
    project(sqlite_alone)

    assert ids(cafe.get("/orders")) == [pending, paid]
    assert ids(cafe.get("/orders", sort="created_at")) == [paid, pending]
    assert ids(cafe.get("/orders", status="paid", table_id=cafe.table_id)) == [paid]
    assert cafe.get("/orders", status="paid").json()["total"] == 1
    walked = [item["id"] for item in cafe.pages("/orders", limit=1)]
    assert walked == [pending, paid]
    order = cafe.get(f"/orders/{paid}")
    assert order.headers["etag"] == '"5"'
    assert order.json()["paid_cents"] == 350
    history = cafe.get(f"/orders/{paid}/history").json()
    assert [e["version"] for e in history["items"]] == [1, 2, 3, 4, 5]


def test_embedded_mode_projects_orders_by_itself(sqlite_client: TestClient) -> None:
    """No manual catch-up: the in-process relay and projectors make min_position fresh."""
    cafe = open_cafe(sqlite_client, prices=(300,))
    placed = cafe.place(1)
    response = cafe.get(f"/orders/{placed['id']}", min_position=placed["position"])
    assert response.status_code == 200, response.text
    assert "x-projection-stale" not in response.headers
