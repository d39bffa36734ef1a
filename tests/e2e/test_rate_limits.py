"""Rate limits as a client meets them: per caller, per order creation, per IP on the
anonymous routes and on bad credentials; 429 problem+json with Retry-After and
X-RateLimit-*; Redis down lets requests through; off when RATE_LIMIT_ENABLED=false."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from coffeeshop.api.app import create_app
from coffeeshop.api.ratelimit import RateLimiter
from tests.conftest import REDIS_URL, make_settings
from tests.e2e.helpers import assert_problem, new_tenant

LIMITER_REDIS = REDIS_URL.rsplit("/", 1)[0] + "/12"  # its own db: flushed freely
LIMITS = {"rate_limit_per_minute": 5, "order_rate_limit": 2, "auth_rate_limit": 4}


def _limited_client(**overrides: object) -> Iterator[TestClient]:
    settings = make_settings(rate_limit_enabled=True, **{**LIMITS, **overrides})
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(params=["redis", "memory"])
def limited(request: pytest.FixtureRequest, embedded_url: str) -> Iterator[TestClient]:
    """Counters in Redis (MariaDB app) and in memory (the embedded default)."""
    if request.param == "redis":
        redis.Redis.from_url(LIMITER_REDIS).flushdb()
        yield from _limited_client(redis_url=LIMITER_REDIS)
    else:
        yield from _limited_client(database_url=embedded_url, redis_url=None)


def _rejections(scope: str) -> float:
    value = REGISTRY.get_sample_value("coffeeshop_rate_limit_rejections_total", {"scope": scope})
    return value or 0.0


def test_each_caller_has_a_quota_and_the_429_says_when_to_retry(limited: TestClient) -> None:
    owner = new_tenant(limited)  # signup and token: two of the IP's four auth requests
    before = _rejections("caller")
    for remaining in range(4, -1, -1):
        ok = limited.get("/api/v1/me", headers=owner.headers)
        assert ok.status_code == 200, ok.text
        assert ok.headers["x-ratelimit-limit"] == "5"
        assert ok.headers["x-ratelimit-remaining"] == str(remaining)
        assert 0 <= int(ok.headers["x-ratelimit-reset"]) <= 60

    refused = limited.get("/api/v1/me", headers=owner.headers)

    body = assert_problem(refused, 429)
    assert body["type"] == "/problems/rate-limited"
    assert "caller" in body["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert _rejections("caller") == before + 1


def test_one_callers_quota_is_not_anothers(limited: TestClient) -> None:
    owner = new_tenant(limited)
    key = limited.post("/api/v1/api-keys", json={"name": "Till"}, headers=owner.headers)
    assert key.status_code == 201, key.text
    for _ in range(4):
        limited.get("/api/v1/me", headers=owner.headers)
    assert limited.get("/api/v1/me", headers=owner.headers).status_code == 429

    till = limited.get("/api/v1/me", headers={"X-API-Key": key.json()["key"]})
    assert till.status_code == 200
    assert till.headers["x-ratelimit-remaining"] == "4"


def test_order_creation_has_its_own_lower_limit(limited: TestClient) -> None:
    owner = new_tenant(limited)
    category = limited.post(
        "/api/v1/menu/categories", json={"name": "Coffee"}, headers=owner.headers
    ).json()["id"]
    item = limited.post(
        "/api/v1/menu/items",
        json={"name": "Latte", "category_id": category, "price_cents": 400},
        headers=owner.headers,
    ).json()["id"]
    order = {"items": [{"menu_item_id": item, "quantity": 1}]}
    for remaining in (1, 0):
        placed = limited.post("/api/v1/orders", json=order, headers=owner.headers)
        assert placed.status_code == 201, placed.text
        assert placed.headers["x-ratelimit-limit"] == "2"  # the narrower quota is shown
        assert placed.headers["x-ratelimit-remaining"] == str(remaining)

    refused = limited.post("/api/v1/orders", json=order, headers=owner.headers)

    assert "orders" in assert_problem(refused, 429)["detail"]
    assert refused.headers["x-ratelimit-limit"] == "2"  # the caller had room: 5th of 5


def test_anonymous_routes_and_bad_credentials_count_per_ip(limited: TestClient) -> None:
    form = {"username": "nobody@example.com", "password": "wrong-password-123"}
    for _ in range(2):
        assert limited.post("/api/v1/auth/token", data=form).status_code == 401
    for _ in range(2):  # guessing API keys spends the same quota
        assert limited.get("/api/v1/me", headers={"X-API-Key": "guess"}).status_code == 401

    refused = limited.post(
        "/api/v1/auth/token", data=form, headers={"X-Forwarded-For": "203.0.113.9"}
    )

    assert "auth" in assert_problem(refused, 429)["detail"]
    assert limited.get("/api/v1/me", headers={"X-API-Key": "guess"}).status_code == 429
    assert assert_problem(limited.post("/api/v1/signup", json={}), 429)


def test_redis_down_lets_requests_through_and_counts_it() -> None:
    redis.Redis.from_url(LIMITER_REDIS).flushdb()
    settings = make_settings(rate_limit_enabled=True, redis_url=LIMITER_REDIS, **LIMITS)
    warnings: list[logging.LogRecord] = []
    catcher = logging.Handler(logging.WARNING)
    catcher.emit = warnings.append  # type: ignore[method-assign]
    with TestClient(create_app(settings)) as client:
        owner = new_tenant(client)
        client.app.state.container.limiter = RateLimiter(  # type: ignore[attr-defined]
            make_settings(rate_limit_enabled=True, redis_url="redis://127.0.0.1:1/0", **LIMITS)
        )
        errors = REGISTRY.get_sample_value("coffeeshop_rate_limit_errors_total") or 0
        logging.getLogger("coffeeshop.ratelimit").addHandler(catcher)
        try:
            answers = [client.get("/api/v1/me", headers=owner.headers) for _ in range(8)]
        finally:
            logging.getLogger("coffeeshop.ratelimit").removeHandler(catcher)

    assert [a.status_code for a in answers] == [200] * 8
    assert "x-ratelimit-limit" not in answers[0].headers
    assert REGISTRY.get_sample_value("coffeeshop_rate_limit_errors_total") == errors + 8
    assert len(warnings) == 1  # once a minute, not once a request
    assert "letting requests through" in warnings[0].getMessage()


def test_limits_are_off_when_disabled(client: TestClient) -> None:
    owner = new_tenant(client)
    answers = [client.get("/api/v1/me", headers=owner.headers) for _ in range(12)]
    assert {a.status_code for a in answers} == {200}
    assert "x-ratelimit-limit" not in answers[-1].headers


def test_the_metrics_page_lists_rejections(limited: TestClient) -> None:
    owner = new_tenant(limited)
    for _ in range(6):
        limited.get("/api/v1/me", headers=owner.headers)
    page = limited.get("/metrics").text
    assert 'coffeeshop_rate_limit_rejections_total{scope="caller"}' in page
    assert "coffeeshop_rate_limit_errors_total" in page
