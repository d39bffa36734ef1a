"""Fixtures for the command-side HTTP tests: the app on MariaDB and on embedded SQLite.

Signing up and logging in cost ~0.2 s each (argon2), so every backend gets its restaurants
once per session. Tests change them only by adding their own categories, items and orders,
and compare event counts and positions before and after, so sharing them is safe.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from coffeeshop.api.app import create_app
from coffeeshop.commands import order as order_aggregate
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.registry import registry
from coffeeshop.events.schema import events
from tests.conftest import make_settings

PASSWORD = "correct horse battery staple"
PROBLEM_JSON = "application/problem+json"


def unique(tag: str) -> str:
    return f"{tag} {uuid.uuid4().hex[:8]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token(client: TestClient, email: str) -> str:
    response = client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@dataclass
class Shop:
    """A restaurant reached over HTTP, with the event store underneath for checks."""

    client: TestClient
    restaurant_id: str
    owner_id: str
    owner: dict[str, str]
    staff_id: str | None = None
    staff: dict[str, str] | None = None
    pos_key_id: str | None = None
    pos: dict[str, str] | None = None

    # -- the event store, read directly ---------------------------------------------------

    @property
    def engine(self) -> Engine:
        engine: Engine = self.client.app.state.container.engine  # type: ignore[attr-defined]
        return engine

    def count(self) -> int:
        """How many events this restaurant has in the ``events`` table."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.count())
                .select_from(events)
                .where(events.c.restaurant_id == self.restaurant_id)
            ).scalar_one()
        return int(value)

    def head(self) -> int:
        """The restaurant's last seq (0 before its first event)."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.max(events.c.seq)).where(events.c.restaurant_id == self.restaurant_id)
            ).scalar()
        return int(value or 0)

    def events(self, after_seq: int = 0) -> list[RecordedEvent]:
        store = self.client.app.state.container.store  # type: ignore[attr-defined]
        found: list[RecordedEvent] = store.read_restaurant(
            self.restaurant_id, after_seq, limit=100_000
        )
        return found

    def stream(self, stream_id: str) -> list[RecordedEvent]:
        store = self.client.app.state.container.store  # type: ignore[attr-defined]
        found: list[RecordedEvent] = store.load_stream(self.restaurant_id, stream_id)
        return found

    def types(self, stream_id: str) -> list[str]:
        return [event.type for event in self.stream(stream_id)]

    def order_state(self, order_id: str) -> order_aggregate.Order:
        state = order_aggregate.Order()
        for recorded in self.stream(order_id):
            state = order_aggregate.evolve(state, recorded.decode(registry))
        return state

    # -- HTTP -------------------------------------------------------------------------------

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        who: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A request as ``who`` (default: the owner) with any extra ``headers``."""
        sent = {**(self.owner if who is None else who), **(headers or {})}
        if body is None:
            response: httpx.Response = self.client.request(method, path, headers=sent)
        else:
            response = self.client.request(method, path, json=body, headers=sent)
        return response

    def category(self, name: str | None = None) -> str:
        response = self.send("POST", "/api/v1/menu/categories", {"name": name or unique("Cat")})
        assert response.status_code == 201, response.text
        category_id: str = response.json()["id"]
        return category_id

    def item(
        self, category_id: str | None = None, price_cents: int = 350, available: bool = True
    ) -> str:
        body = {
            "name": unique("Item"),
            "category_id": category_id or self.category(),
            "price_cents": price_cents,
            "is_available": available,
        }
        response = self.send("POST", "/api/v1/menu/items", body)
        assert response.status_code == 201, response.text
        item_id: str = response.json()["id"]
        return item_id

    def table(self) -> str:
        body = {"label": f"T-{uuid.uuid4().hex[:8]}", "seats": 4}
        response = self.send("POST", "/api/v1/tables", body)
        assert response.status_code == 201, response.text
        table_id: str = response.json()["id"]
        return table_id

    def place(
        self, *item_ids: str, quantity: int = 1, who: dict[str, str] | None = None, **fields: Any
    ) -> dict[str, Any]:
        body = {"items": [{"menu_item_id": i, "quantity": quantity} for i in item_ids], **fields}
        response = self.send("POST", "/api/v1/orders", body, who)
        assert response.status_code == 201, response.text
        placed: dict[str, Any] = response.json()
        return placed

    def order_in(self, status: str, *item_ids: str) -> str:
        """A fresh order driven to ``status`` (pending ... paid, cancelled)."""
        items = item_ids or (self.item(),)
        order_id: str = self.place(*items)["id"]
        steps = {
            "pending": [],
            "preparing": ["start"],
            "ready": ["start", "ready"],
            "served": ["start", "ready", "serve"],
            "paid": ["start", "ready", "serve", "pay"],
            "cancelled": ["cancel"],
        }[status]
        for step in steps:
            body: dict[str, Any] | None = None
            if step == "pay":
                total = self.order_state(order_id).total_cents
                body = {"method": "cash", "amount_cents": total}
            elif step == "cancel":
                body = {"reason": "changed their mind"}
            response = self.send("POST", f"/api/v1/orders/{order_id}/{step}", body)
            assert response.status_code == 200, response.text
        return order_id

    def line_ids(self, order_id: str) -> list[str]:
        return [line.line_id for line in self.order_state(order_id).lines]


@dataclass
class Pair:
    """The restaurant under test and a second, unrelated one on the same backend."""

    main: Shop
    other: Shop


def _signup(client: TestClient, name: str) -> Shop:
    email = f"owner-{uuid.uuid4().hex[:12]}@example.com"
    response = client.post(
        "/api/v1/signup", json={"restaurant_name": name, "email": email, "password": PASSWORD}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Shop(client, body["restaurant_id"], body["user_id"], bearer(_token(client, email)))


def _build_pair(client: TestClient) -> Pair:
    main = _signup(client, "Command Café")
    email = f"staff-{uuid.uuid4().hex[:12]}@example.com"
    created = client.post(
        "/api/v1/users",
        json={"email": email, "password": PASSWORD, "role": "staff"},
        headers=main.owner,
    )
    assert created.status_code == 201, created.text
    main.staff_id = created.json()["id"]
    main.staff = bearer(_token(client, email))
    key = client.post("/api/v1/api-keys", json={"name": "Till 1"}, headers=main.owner)
    assert key.status_code == 201, key.text
    main.pos_key_id = key.json()["id"]
    main.pos = {"X-API-Key": key.json()["key"]}
    return Pair(main=main, other=_signup(client, "Rival Bistro"))


@pytest.fixture(scope="session")
def cmd_mysql_client(mysql_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as client:
        yield client


@pytest.fixture(scope="session")
def cmd_sqlite_client(embedded_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(database_url=embedded_url, redis_url=None))) as client:
        yield client


@pytest.fixture(scope="session")
def mysql_pair(cmd_mysql_client: TestClient) -> Pair:
    return _build_pair(cmd_mysql_client)


@pytest.fixture(scope="session")
def sqlite_pair(cmd_sqlite_client: TestClient) -> Pair:
    return _build_pair(cmd_sqlite_client)


@pytest.fixture(params=["mysql", "sqlite"])
def pair(request: pytest.FixtureRequest) -> Pair:
    """Both backends: what holds on MariaDB must hold in the embedded SQLite app too."""
    result: Pair = request.getfixturevalue(f"{request.param}_pair")
    return result


@pytest.fixture
def shop(pair: Pair) -> Shop:
    return pair.main


@pytest.fixture
def mshop(mysql_pair: Pair) -> Shop:
    """The restaurant under test, on MariaDB only (the 4xx matrices)."""
    return mysql_pair.main


@pytest.fixture
def rival(mysql_pair: Pair) -> Shop:
    """Another restaurant on MariaDB."""
    return mysql_pair.other


# -- assertions ---------------------------------------------------------------------------


def accepted(
    response: httpx.Response, status: int = 200, version: int | None = None
) -> dict[str, Any]:
    """A command's answer: ``{id, version, position}`` and ``ETag: "<version>"``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert {"id", "version", "position"} <= set(body), body
    uuid.UUID(body["id"])
    assert isinstance(body["version"], int)
    assert isinstance(body["position"], int)
    assert body["position"] >= 1
    assert response.headers["etag"] == f'"{body["version"]}"'
    if version is not None:
        assert body["version"] == version, body
    return body


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem with the given status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for member in ("type", "title", "detail", "instance", "request_id"):
        assert member in body, body
    return body
