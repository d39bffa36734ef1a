"""Report tasks over HTTP, embedded mode (the worker's sweep runs in the API process): 202 at
once, then done with the full report and a CSV whose figures match the projections."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from tests.e2e.helpers import Tenant, assert_problem, new_tenant

ZONE = "Europe/Berlin"


def _shop(client: TestClient) -> tuple[Tenant, dict[str, int]]:
    owner = new_tenant(client, restaurant_name="Reporting Café", timezone=ZONE)
    h = owner.headers
    category = client.post("/api/v1/menu/categories", json={"name": "Coffee"}, headers=h)
    items = {}
    for name, price in (("Flat white", 380), ("Cake", 450)):
        made = client.post(
            "/api/v1/menu/items",
            json={"name": name, "category_id": category.json()["id"], "price_cents": price},
            headers=h,
        )
        items[made.json()["id"]] = price
    return owner, items


def _trade(client: TestClient, owner: Tenant, items: dict[str, int]) -> int:
    h, (white, cake) = owner.headers, list(items)
    position = 0
    plan = [((white, 2), "card", 50), ((cake, 1), "cash", 0), ((white, 1), None, 0)]
    for (item, quantity), method, tip in plan:
        placed = client.post(
            "/api/v1/orders",
            json={"items": [{"menu_item_id": item, "quantity": quantity}]},
            headers=h,
        ).json()
        order, position = placed["id"], placed["position"]
        if method is None:
            position = client.post(
                f"/api/v1/orders/{order}/cancel", json={"reason": "left"}, headers=h
            ).json()["position"]
            continue
        for step in ("start", "ready", "serve"):  # only served orders are paid
            assert client.post(f"/api/v1/orders/{order}/{step}", headers=h).status_code == 200
        amount = items[item] * quantity
        position = client.post(
            f"/api/v1/orders/{order}/pay",
            json={"method": method, "amount_cents": amount, "tip_cents": tip},
            headers=h,
        ).json()["position"]
    return position


def _wait_done(client: TestClient, owner: Tenant, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        task = client.get(f"/api/v1/reports/tasks/{task_id}", headers=owner.headers).json()
        if task["status"] != "processing" or time.monotonic() > deadline:
            return dict(task)
        time.sleep(0.1)


def test_a_report_task_is_accepted_at_once_then_done_with_matching_csv(
    sqlite_client: TestClient,
) -> None:
    client = sqlite_client
    owner, items = _shop(client)
    position = _trade(client, owner, items)
    today = datetime.now(ZoneInfo(ZONE)).date().isoformat()
    figures = client.get(
        "/api/v1/reports/daily",
        params={"date": today, "min_position": position},
        headers=owner.headers,
    ).json()
    # The task reads the orders projection, which catches up on its own: wait for it too.
    listed = client.get("/api/v1/orders", params={"min_position": position}, headers=owner.headers)
    assert "x-projection-stale" not in listed.headers

    accepted = client.post("/api/v1/reports/daily", json={"date": today}, headers=owner.headers)

    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "processing"
    task = _wait_done(client, owner, accepted.json()["task_id"])
    assert task["status"] == "done", task
    result = task["result"]
    assert result["summary"] == figures
    assert result["timezone"] == ZONE
    assert len(result["orders"]) == 3
    methods = {m["method"]: m for m in result["payments_by_method"]}
    assert {m: (f["payments"], f["amount_cents"], f["tips_cents"]) for m, f in methods.items()} == {
        "card": (1, 760, 50),
        "cash": (1, 450, 0),
    }
    assert sum(m["amount_cents"] for m in methods.values()) == figures["revenue_cents"]
    assert sum(m["tips_cents"] for m in methods.values()) == figures["tips_cents"]

    download = client.get(task["csv_url"], headers=owner.headers)
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert len(rows) == 3
    paid = [r for r in rows if r["status"] == "paid"]
    assert sum(int(r["line_total_cents"]) for r in paid) == figures["revenue_cents"]
    assert {r["status"] for r in rows} == {"paid", "cancelled"}
    assert all(r["placed_at"].endswith(("+01:00", "+02:00")) for r in rows)  # local time


def test_asking_twice_while_it_runs_gives_the_same_task(sqlite_client: TestClient) -> None:
    owner, _ = _shop(sqlite_client)
    container = sqlite_client.app.state.container  # type: ignore[attr-defined]
    body = {"date": "2026-03-29"}
    first = sqlite_client.post("/api/v1/reports/daily", json=body, headers=owner.headers)
    second = sqlite_client.post("/api/v1/reports/daily", json=body, headers=owner.headers)
    done = _wait_done(sqlite_client, owner, first.json()["task_id"])
    assert container is not None
    if second.json()["task_id"] != first.json()["task_id"]:
        # Only possible when the first finished in between (0.5 s sweeps): then it was done.
        assert done["status"] == "done"
    again = sqlite_client.post("/api/v1/reports/daily", json=body, headers=owner.headers)
    assert again.json()["task_id"] != first.json()["task_id"]  # a finished task is not reused


def test_the_csv_of_a_task_not_done_is_404_and_bad_input_is_422(
    mysql_client: TestClient,
) -> None:
    owner = new_tenant(mysql_client)
    task = mysql_client.post(
        "/api/v1/reports/daily", json={"date": "2026-01-05"}, headers=owner.headers
    ).json()  # no worker runs for this app: it stays processing
    csv_answer = mysql_client.get(
        f"/api/v1/reports/tasks/{task['task_id']}/csv", headers=owner.headers
    )
    assert "processing" in assert_problem(csv_answer, 404)["detail"]
    for body in ({"date": "2026-02-30"}, {"date": "soon"}, {}, {"date": "2026-01-05", "x": 1}):
        assert_problem(
            mysql_client.post("/api/v1/reports/daily", json=body, headers=owner.headers), 422
        )
