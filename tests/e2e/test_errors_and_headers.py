"""Problem details, the request id and the security headers on every kind of response."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coffeeshop.api.app import create_app
from tests.conftest import make_settings
from tests.e2e.helpers import (
    PROBLEM_JSON,
    STRICT_CSP,
    Org,
    assert_common_headers,
    assert_problem,
    assert_unauthorized,
    bearer,
)

SECRET_MARKER = "s3cr3t-internal-detail-do-not-leak"


def _boom() -> None:
    raise RuntimeError(f"database password is {SECRET_MARKER}")


async def _async_boom() -> None:
    raise KeyError(SECRET_MARKER)


@pytest.fixture(scope="module")
def crashing_client(mysql_engine: Engine) -> Iterator[TestClient]:
    """An app with routes that fail the way bugs do."""
    app = create_app(make_settings())
    app.add_api_route("/boom", _boom, methods=["GET"])
    app.add_api_route("/api/v1/async-boom", _async_boom, methods=["GET", "POST"])
    with TestClient(app) as client:
        yield client


def _requests(client: TestClient, org: Org) -> dict[str, httpx.Response]:
    return {
        "200 health": client.get("/health"),
        "200 me": client.get("/api/v1/me", headers=org.owner.headers),
        "201 table": client.post(
            "/api/v1/tables",
            headers=org.manager.headers,
            json={"label": f"H{uuid.uuid4().hex[:6]}", "seats": 2},
        ),
        "204 revoke": client.delete(
            f"/api/v1/api-keys/{_new_key(client, org)}", headers=org.owner.headers
        ),
        "401 no credentials": client.get("/api/v1/users"),
        "401 bad token": client.get("/api/v1/users", headers=bearer("nope")),
        "403 staff": client.get("/api/v1/users", headers=org.staff.headers),
        "404 unknown route": client.get("/api/v1/nothing-here"),
        "404 unknown key": client.delete(
            f"/api/v1/api-keys/{uuid.uuid4()}", headers=org.owner.headers
        ),
        "405": client.put("/api/v1/me", headers=org.owner.headers),
        "422 body": client.post("/api/v1/tables", json={"label": ""}, headers=org.owner.headers),
        "422 query": client.get("/api/v1/users", params={"limit": 0}, headers=org.owner.headers),
    }


def _new_key(client: TestClient, org: Org) -> str:
    created = client.post(
        "/api/v1/api-keys", json={"name": "short-lived"}, headers=org.owner.headers
    )
    assert created.status_code == 201
    key_id: str = created.json()["id"]
    return key_id


def test_every_response_carries_request_id_and_security_headers(
    client: TestClient, org: Org
) -> None:
    for name, response in _requests(client, org).items():
        expected = int(name.split()[0])
        assert response.status_code == expected, (name, response.text)
        assert_common_headers(response)
        uuid.UUID(response.headers["x-request-id"])  # generated: a UUID
        if expected >= 400:
            body = assert_problem(response, expected)
            assert body["instance"] == response.request.url.path
            assert body["type"].startswith("/problems/") or body["type"] == "about:blank"
            assert body["title"]
        else:
            assert not response.headers.get("content-type", "").startswith(PROBLEM_JSON)


def test_request_ids_differ_per_request(client: TestClient) -> None:
    ids = {client.get("/health").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


def test_405_names_the_allowed_methods(client: TestClient) -> None:
    response = client.post("/health")
    assert_problem(response, 405)
    assert "GET" in response.headers.get("allow", "")


def test_422_lists_every_error(client: TestClient, org: Org) -> None:
    response = client.post(
        "/api/v1/tables", json={"label": "", "seats": 0, "x": 1}, headers=org.owner.headers
    )
    body = assert_problem(response, 422)
    locs = [e["loc"] for e in body["errors"]]
    assert ["body", "label"] in locs
    assert ["body", "seats"] in locs
    assert ["body", "x"] in locs
    for entry in body["errors"]:
        assert isinstance(entry["msg"], str)
        assert entry["msg"]


@pytest.mark.parametrize("sent", ["abc-123", "req_42.a:b", "A" * 128, str(uuid.uuid4())])
def test_a_sane_request_id_is_echoed(client: TestClient, org: Org, sent: str) -> None:
    ok = client.get("/health", headers={"X-Request-ID": sent})
    assert ok.headers.get_list("x-request-id") == [sent]
    failed = client.get("/api/v1/users", headers={"X-Request-ID": sent})
    assert failed.headers.get_list("x-request-id") == [sent]
    assert assert_unauthorized(failed)["request_id"] == sent


@pytest.mark.parametrize(
    "sent",
    [
        "A" * 129,
        "x" * 300,
        "has space",
        "semi;colon",
        "<script>alert(1)</script>",
        'quote"d',
        "tab\there",
        "ünïcode",
        "line\r\nSet-Cookie: evil=1",
        "new\nline",
    ],
)
def test_an_insane_request_id_is_replaced(client: TestClient, sent: str) -> None:
    try:
        response = client.get("/api/v1/me", headers={"X-Request-ID": sent})
    except (httpx.LocalProtocolError, UnicodeEncodeError, ValueError):
        response = client.get("/api/v1/me", headers={"X-Request-ID": sent.encode()})  # type: ignore[dict-item]
    returned = response.headers.get_list("x-request-id")
    assert len(returned) == 1
    assert returned[0] != sent
    uuid.UUID(returned[0])
    assert assert_unauthorized(response)["request_id"] == returned[0]
    assert "set-cookie" not in response.headers


def test_docs_get_a_relaxed_csp_and_the_api_the_strict_one(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    csp = docs.headers["content-security-policy"]
    assert csp != STRICT_CSP
    assert "script-src" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp
    assert docs.headers["x-frame-options"] == "DENY"
    assert_common_headers(docs, csp=csp)

    for path in ("/redoc", "/docs/oauth2-redirect"):
        assert client.get(path).headers["content-security-policy"] == csp, path

    for path in ("/openapi.json", "/health", "/api/v1/me", "/docsx", "/api/v1/docs"):
        response = client.get(path)
        assert response.headers["content-security-policy"] == STRICT_CSP, path
        assert_common_headers(response)


def test_openapi_describes_the_identity_endpoints(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/signup",
        "/api/v1/auth/token",
        "/api/v1/me",
        "/api/v1/users",
        "/api/v1/api-keys",
        "/api/v1/api-keys/{key_id}",
        "/api/v1/tables",
    ):
        assert path in spec["paths"], path


def test_an_unexpected_error_is_a_problem_500_without_internals(
    crashing_client: TestClient,
) -> None:
    for method, path in (
        ("GET", "/boom"),
        ("GET", "/api/v1/async-boom"),
        ("POST", "/api/v1/async-boom"),
    ):
        response = crashing_client.request(method, path, headers={"X-Request-ID": "trace-me-1"})
        body = assert_problem(response, 500)
        assert body["request_id"] == "trace-me-1"
        assert body["instance"] == path
        assert_common_headers(response)
        text = response.text
        for leak in (SECRET_MARKER, "Traceback", "RuntimeError", "KeyError", 'File "', ".py"):
            assert leak not in text, leak


def test_the_app_keeps_serving_after_an_unexpected_error(crashing_client: TestClient) -> None:
    assert crashing_client.get("/boom").status_code == 500
    assert crashing_client.get("/health").status_code == 200
