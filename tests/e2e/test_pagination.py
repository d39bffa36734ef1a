"""The pagination envelope: bounds, offset pages and keyset cursors over real databases."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from coffeeshop.api.app import create_app
from coffeeshop.api.container import build_container
from tests.conftest import make_settings
from tests.e2e.helpers import Org, Tenant, assert_problem, error_locs, new_tenant

TABLES = 7


def _with_tables(client: TestClient) -> Tenant:
    tenant = new_tenant(client, restaurant_name="Paged Diner")
    for n in range(TABLES):
        created = client.post(
            "/api/v1/tables", json={"label": f"T{n}", "seats": n + 1}, headers=tenant.headers
        )
        assert created.status_code == 201, created.text
    return tenant


@pytest.fixture(scope="module")
def mysql_paged(mysql_client: TestClient) -> Tenant:
    return _with_tables(mysql_client)


@pytest.fixture(scope="module")
def sqlite_paged(sqlite_client: TestClient) -> Tenant:
    return _with_tables(sqlite_client)


@pytest.fixture
def paged(backend: str, request: pytest.FixtureRequest) -> Tenant:
    """A fresh restaurant with exactly seven tables, T0..T6 in creation order."""
    result: Tenant = request.getfixturevalue(f"{backend}_paged")
    return result


@pytest.fixture(scope="module", params=["mysql", "sqlite"])
def frozen(request: pytest.FixtureRequest) -> Iterator[Tenant]:
    """A restaurant whose tables all share one created_at: the id alone orders them."""
    if request.param == "mysql":
        request.getfixturevalue("mysql_engine")
        settings = make_settings()
    else:
        embedded_url: str = request.getfixturevalue("embedded_url")
        settings = make_settings(database_url=embedded_url, redis_url=None)
    instant = datetime.now(UTC).replace(microsecond=123456)
    app = create_app(settings, container=build_container(settings, clock=lambda: instant))
    with TestClient(app) as client:
        yield _with_tables(client)


def _get(tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = tenant.client.get("/api/v1/tables", params=params, headers=tenant.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _follow_cursors(tenant: Tenant, limit: int) -> list[list[dict[str, Any]]]:
    pages = []
    body = _get(tenant, limit=limit)
    pages.append(body["items"])
    while body["has_more"]:
        assert body["next_cursor"], body
        assert len(pages) <= TABLES, "cursor paging does not end"
        body = _get(tenant, limit=limit, cursor=body["next_cursor"])
        pages.append(body["items"])
    assert body["next_cursor"] is None
    return pages


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 51}, ["query", "limit"]),
        ({"limit": -1}, ["query", "limit"]),
        ({"limit": "ten"}, ["query", "limit"]),
        ({"limit": 2.5}, ["query", "limit"]),
        ({"skip": -1}, ["query", "skip"]),
        ({"skip": "x"}, ["query", "skip"]),
        ({"skip": 10**30}, ["query", "skip"]),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/tables", "/api/v1/users", "/api/v1/api-keys"])
def test_out_of_range_paging_is_422(
    client: TestClient, org: Org, path: str, params: dict[str, Any], loc: list[str]
) -> None:
    response = client.get(path, params=params, headers=org.owner.headers)
    assert loc in error_locs(assert_problem(response, 422))


def test_limits_at_the_bounds_are_fine(client: TestClient, org: Org) -> None:
    for limit in (1, 50):
        response = client.get("/api/v1/users", params={"limit": limit}, headers=org.owner.headers)
        assert response.status_code == 200, response.text
        assert response.json()["limit"] == limit
        assert len(response.json()["items"]) <= limit


def test_default_envelope(paged: Tenant) -> None:
    body = _get(paged)
    assert set(body) >= {"items", "total", "skip", "limit", "has_more", "next_cursor"}
    assert body["skip"] == 0
    assert body["limit"] == 20
    assert body["total"] == TABLES
    assert body["has_more"] is False
    assert body["next_cursor"] is None
    assert [t["label"] for t in body["items"]] == [f"T{n}" for n in range(TABLES)]
    assert [t["seats"] for t in body["items"]] == list(range(1, TABLES + 1))


def test_offset_pages(paged: Tenant) -> None:
    first = _get(paged, limit=3)
    assert len(first["items"]) == 3
    assert first["total"] == TABLES
    assert first["has_more"] is True
    assert first["next_cursor"]

    middle = _get(paged, skip=3, limit=3)
    assert middle["skip"] == 3
    assert middle["has_more"] is True

    last = _get(paged, skip=6, limit=3)
    assert [t["label"] for t in last["items"]] == ["T6"]
    assert last["has_more"] is False
    assert last["next_cursor"] is None

    exact = _get(paged, skip=4, limit=3)  # exactly the rest: no phantom next page
    assert len(exact["items"]) == 3
    assert exact["has_more"] is False
    assert exact["next_cursor"] is None

    beyond = _get(paged, skip=100, limit=3)
    assert beyond["items"] == []
    assert beyond["has_more"] is False
    assert beyond["total"] == TABLES

    labels = [t["label"] for page in (first, middle, last) for t in page["items"]]
    assert labels == [f"T{n}" for n in range(TABLES)]


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 50])
def test_cursor_pages_return_everything_once_in_order(paged: Tenant, limit: int) -> None:
    pages = _follow_cursors(paged, limit)
    items = [t for page in pages for t in page]
    ids = [t["id"] for t in items]
    assert len(ids) == len(set(ids)), "an item came twice"
    assert [t["label"] for t in items] == [f"T{n}" for n in range(TABLES)]
    assert len(pages) == max(1, -(-TABLES // limit))
    assert all(len(page) == limit for page in pages[:-1])


def test_a_cursor_from_an_offset_page_continues_after_it(paged: Tenant) -> None:
    middle = _get(paged, skip=2, limit=2)
    assert [t["label"] for t in middle["items"]] == ["T2", "T3"]
    rest = _get(paged, cursor=middle["next_cursor"], limit=10)
    assert [t["label"] for t in rest["items"]] == ["T4", "T5", "T6"]
    assert rest["has_more"] is False


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_cursor_pages_with_identical_timestamps(frozen: Tenant, limit: int) -> None:
    whole = _get(frozen, limit=50)["items"]
    assert len({t["created_at"] for t in whole}) == 1, "the clock was not frozen"
    items = [t for page in _follow_cursors(frozen, limit) for t in page]
    assert [t["id"] for t in items] == [t["id"] for t in whole]
    assert len({t["id"] for t in items}) == TABLES


def test_skip_with_cursor_is_422(paged: Tenant) -> None:
    cursor = _get(paged, limit=2)["next_cursor"]
    response = paged.client.get(
        "/api/v1/tables", params={"skip": 2, "cursor": cursor}, headers=paged.headers
    )
    assert ["query", "skip"] in error_locs(assert_problem(response, 422))


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        "%%%",
        "x" * 600,
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
        _b64({"created_at": "2024-01-01", "id": "x"}),
        _b64([]),
        _b64("a string"),
        _b64(["just-one"]),
        _b64([1, 2]),
        _b64([None, None]),
        _b64(["not a date", "id"]),
        _b64(["2024-01-01T00:00:00+00:00", "id", "extra"]),
        _b64([["nested"], "id"]),
        _b64(["0001-01-01T00:00:00+05:00", "id"]),
        _b64(["9999-12-31T23:59:59-05:00", "id"]),
    ],
)
def test_a_bad_cursor_is_422(paged: Tenant, cursor: str) -> None:
    response = paged.client.get("/api/v1/tables", params={"cursor": cursor}, headers=paged.headers)
    assert_problem(response, 422)


def test_a_cursor_never_reaches_another_restaurant(paged: Tenant, org: Org) -> None:
    """A cursor carries a position, not a tenant: following it stays in the caller's restaurant."""
    theirs = {t["id"] for t in _get(paged, limit=50)["items"]}
    cursor = _get(paged, limit=1)["next_cursor"]
    response = org.owner.client.get(
        "/api/v1/tables", params={"cursor": cursor, "limit": 50}, headers=org.owner.headers
    )
    assert response.status_code == 200, response.text
    own = org.owner.client.get("/api/v1/tables", params={"limit": 50}, headers=org.owner.headers)
    own_ids = {t["id"] for t in own.json()["items"]}
    got = {t["id"] for t in response.json()["items"]}
    assert not got & theirs
    assert got <= own_ids
