"""GET /metrics: HTTP series from the instrumentator, the domain counters, the read side's
figures; and with several uvicorn workers, every worker answers with the sum of all."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import Engine

from tests.conftest import MYSQL_URL, REDIS_URL
from tests.e2e.helpers import Org
from tests.faults.conftest import free_port, service_env, spawn, tail


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_page_has_http_domain_and_read_side_series(
    sqlite_client: TestClient, sqlite_org: Org
) -> None:
    client, org = sqlite_client, sqlite_org
    placed_before = _value("coffeeshop_commands_total", command="OrderCommands.place", outcome="ok")
    appended_before = _value("coffeeshop_events_appended_total", type="OrderPlaced")
    category = client.post(
        "/api/v1/menu/categories", json={"name": "Metrics"}, headers=org.owner.headers
    ).json()["id"]
    item = client.post(
        "/api/v1/menu/items",
        json={"name": "Metered latte", "category_id": category, "price_cents": 420},
        headers=org.owner.headers,
    ).json()["id"]
    placed = client.post(
        "/api/v1/orders",
        json={"items": [{"menu_item_id": item, "quantity": 1}]},
        headers=org.pos_headers,
    )
    assert placed.status_code == 201
    refused = client.post(f"/api/v1/orders/{placed.json()['id']}/serve", headers=org.pos_headers)
    assert refused.status_code == 409  # pending orders are not served
    position = placed.json()["position"]
    for _ in range(2):  # a miss, then a hit
        menu = client.get(
            "/api/v1/menu", params={"min_position": position}, headers=org.pos_headers
        )
        assert menu.status_code == 200

    page = client.get("/metrics")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    text = page.text
    assert re.search(
        r'http_requests_total\{handler="/api/v1/menu",method="GET",status="2xx"\} \d', text
    )
    assert "http_request_duration_seconds_bucket" in text
    assert 'handler="/metrics"' not in text
    assert (
        _value("coffeeshop_commands_total", command="OrderCommands.place", outcome="ok")
        == placed_before + 1
    )
    assert (
        _value("coffeeshop_commands_total", command="OrderCommands.serve", outcome="rejected") >= 1
    )
    assert _value("coffeeshop_events_appended_total", type="OrderPlaced") == appended_before + 1
    assert _value("coffeeshop_cache_lookups_total", cache="menu", result="hit") >= 1
    assert _value("coffeeshop_cache_lookups_total", cache="menu", result="miss") >= 1
    assert _value("coffeeshop_projector_events_total", projection="orders") >= 1
    for series in (
        "coffeeshop_concurrency_conflicts_total",
        "coffeeshop_rate_limit_rejections_total",
        "coffeeshop_projection_lag_events",
        "coffeeshop_projection_state",
    ):
        assert series in text, series


def _scrape_total(base: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('http_requests_total{handler="/api/v1/me"')
    )


def test_several_workers_report_the_sum_of_all(mysql_engine: Engine, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(MYSQL_URL, REDIS_URL, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    (tmp_path / "metrics").mkdir()  # prometheus_client wants it to exist
    log = tmp_path / "serve.log"
    server = spawn(["serve", "--port", str(port), "--workers", "2"], env, tmp_path, log)
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, tail(log)
            time.sleep(0.2)
        for _ in range(30):  # new connections: the kernel spreads them over both workers
            assert httpx.get(f"{base}/api/v1/me", timeout=5).status_code == 401
        totals = {_scrape_total(base) for _ in range(10)}
        pids = {p.name for p in (tmp_path / "metrics").glob("*.db")}
    finally:
        server.terminate()
        assert server.wait(30) == 0, tail(log)
    assert totals == {30.0}, totals  # whichever worker answered
    assert len({name.rsplit("_", 1)[-1] for name in pids}) >= 2, pids  # both wrote counters


@pytest.mark.parametrize("name", ["PROMETHEUS_MULTIPROC_DIR"])
def test_the_test_process_itself_is_single_process(name: str) -> None:
    assert name not in os.environ  # the in-process tests above read REGISTRY directly
