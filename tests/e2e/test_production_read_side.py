"""Production topology end to end: HTTP command -> MariaDB store -> relay -> Redis Streams ->
FastStream projectors -> read tables -> HTTP GET, with min_position and no sleeps."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import Engine

from coffeeshop.api.app import create_app
from coffeeshop.api.container import Container
from coffeeshop.api.runtime import run_projectors, run_relay
from tests.conftest import REDIS_URL, make_settings

pytestmark = pytest.mark.usefixtures("mysql_engine")


class Topology:
    """Relay and projector "processes" as tasks on a loop of their own, as in production."""

    def __init__(self, container: Container) -> None:
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._container = container
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            await asyncio.gather(
                run_relay(self._container, self._stop),
                run_projectors(self._container, [], self._stop),
            )

        self._loop.run_until_complete(main())

    def __enter__(self) -> Topology:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()


@pytest.fixture(scope="module")
def client(mysql_engine: Engine) -> Iterator[TestClient]:
    Redis.from_url(REDIS_URL).flushdb()
    app = create_app(make_settings(consistency_timeout_ms=10_000), read_side=False)
    with TestClient(app) as test_client, Topology(app.state.container):
        yield test_client


def _owner(client: TestClient) -> dict[str, str]:
    email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
    body = {"restaurant_name": "Café Zoë", "email": email, "password": "a-long-password"}
    assert client.post("/api/v1/signup", json=body).status_code == 201
    token = client.post(
        "/api/v1/auth/token", data={"username": email, "password": "a-long-password"}
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _fresh(response_headers: object) -> None:
    assert "x-projection-stale" not in response_headers  # type: ignore[operator]


def test_a_command_is_visible_to_the_next_read_at_its_position(client: TestClient) -> None:
    auth = _owner(client)
    category = client.post("/api/v1/menu/categories", json={"name": "Coffee"}, headers=auth)
    item = client.post(
        "/api/v1/menu/items",
        json={"name": "Latte", "category_id": category.json()["id"], "price_cents": 420},
        headers=auth,
    ).json()

    menu = client.get("/api/v1/menu", params={"min_position": item["position"]}, headers=auth)
    _fresh(menu.headers)
    assert [i["name"] for i in menu.json()["categories"][0]["items"]] == ["Latte"]

    placed = client.post(
        "/api/v1/orders",
        json={"items": [{"menu_item_id": item["id"], "quantity": 2}]},
        headers=auth,
    ).json()
    order = client.get(
        f"/api/v1/orders/{placed['id']}",
        params={"min_position": placed["position"]},
        headers=auth,
    )
    _fresh(order.headers)
    assert order.status_code == 200
    assert order.json()["status"] == "pending"
    assert order.json()["total_cents"] == 840

    last = placed
    for step in ("start", "ready", "serve"):
        last = client.post(f"/api/v1/orders/{placed['id']}/{step}", headers=auth).json()
    last = client.post(
        f"/api/v1/orders/{placed['id']}/pay",
        json={"method": "card", "amount_cents": 840, "tip_cents": 100},
        headers=auth,
    ).json()

    order = client.get(
        f"/api/v1/orders/{placed['id']}", params={"min_position": last["position"]}, headers=auth
    )
    _fresh(order.headers)
    assert order.json()["status"] == "paid"
    assert order.headers["etag"] == f'"{last["version"]}"'

    history = client.get(
        f"/api/v1/orders/{placed['id']}/history",
        params={"min_position": last["position"]},
        headers=auth,
    )
    _fresh(history.headers)
    assert history.json()["total"] == 5

    today = datetime.now(UTC).date().isoformat()
    report = client.get(
        "/api/v1/reports/daily",
        params={"date": today, "min_position": last["position"]},
        headers=auth,
    )
    _fresh(report.headers)
    assert report.json()["revenue_cents"] == 840
    assert report.json()["tips_cents"] == 100

    listed = client.get(
        "/api/v1/orders", params={"status": "paid", "min_position": last["position"]}, headers=auth
    )
    assert [o["id"] for o in listed.json()["items"]] == [placed["id"]]
    assert listed.json()["total"] == 1
