"""Helpers shared by the end-to-end tests: accounts, tokens and response assertions."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"
PROBLEM_JSON = "application/problem+json"
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-xss-protection": "0",
}


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/v1/auth/token", data={"username": email, "password": password})


def token_for(client: TestClient, email: str, password: str = PASSWORD) -> str:
    response = login(client, email, password)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@dataclass
class Tenant:
    """Someone who can sign in: an owner from signup, or a user an owner/manager added."""

    client: TestClient
    restaurant_id: str
    user_id: str
    email: str
    token: str
    role: str = "owner"

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    def add_user(self, role: str) -> Tenant:
        email = unique_email(role)
        created = self.client.post(
            "/api/v1/users",
            json={"email": email, "password": PASSWORD, "role": role},
            headers=self.headers,
        )
        assert created.status_code == 201, created.text
        return Tenant(
            self.client,
            self.restaurant_id,
            created.json()["id"],
            email,
            token_for(self.client, email),
            role,
        )


@dataclass
class Org:
    owner: Tenant
    manager: Tenant
    staff: Tenant
    pos_key: str
    pos_key_id: str

    @property
    def pos_headers(self) -> dict[str, str]:
        return {"X-API-Key": self.pos_key}


def signup(client: TestClient, **overrides: Any) -> httpx.Response:
    body: dict[str, Any] = {
        "restaurant_name": "Blue Bottle",
        "email": unique_email("owner"),
        "password": PASSWORD,
    }
    body.update(overrides)
    return client.post("/api/v1/signup", json=body)


def new_tenant(client: TestClient, **overrides: Any) -> Tenant:
    overrides.setdefault("email", unique_email("owner"))
    response = signup(client, **overrides)
    assert response.status_code == 201, response.text
    body = response.json()
    return Tenant(
        client,
        body["restaurant_id"],
        body["user_id"],
        overrides["email"],
        token_for(client, overrides["email"], overrides.get("password", PASSWORD)),
    )


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 problem: the status, the media type, the members and the request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    for member in ("type", "title", "status", "detail", "instance", "request_id"):
        assert member in body, f"{member} missing from {body}"
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


def error_locs(body: dict[str, Any]) -> list[list[Any]]:
    """The ``loc`` of every entry of a 422's ``errors``, checking each entry's shape."""
    errors = body.get("errors")
    assert isinstance(errors, list), body
    assert errors, body
    for entry in errors:
        assert set(entry) >= {"loc", "msg"}, entry
        assert isinstance(entry["loc"], list), entry
        assert isinstance(entry["msg"], str), entry
        assert entry["msg"], entry
    return [entry["loc"] for entry in errors]


def assert_unauthorized(response: httpx.Response) -> dict[str, Any]:
    body = assert_problem(response, 401)
    assert response.headers.get("www-authenticate", "").lower().startswith("bearer")
    return body


def assert_common_headers(response: httpx.Response, csp: str = STRICT_CSP) -> None:
    """The request id and the security headers every response carries."""
    assert response.headers.get_list("x-request-id"), response.headers
    assert len(response.headers.get_list("x-request-id")) == 1
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers.get(name))
    hsts = response.headers.get("strict-transport-security", "")
    assert "max-age=" in hsts
    assert int(hsts.split("max-age=")[1].split(";")[0]) >= 15_552_000  # at least 180 days
    assert response.headers.get("content-security-policy") == csp
