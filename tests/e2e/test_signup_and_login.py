"""Signup, the OAuth2 password flow and /me, on MariaDB and on embedded SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coffeeshop.api.app import create_app
from tests.conftest import TEST_SECRET, make_settings
from tests.e2e.helpers import (
    PASSWORD,
    Org,
    assert_problem,
    assert_unauthorized,
    bearer,
    error_locs,
    login,
    signup,
    unique_email,
)


def test_signup_then_token_then_me(client: TestClient) -> None:
    email = unique_email("owner")
    created = signup(client, email=email, timezone="Europe/Berlin", currency="EUR")
    assert created.status_code == 201, created.text
    ids = created.json()
    assert set(ids) >= {"restaurant_id", "user_id"}
    assert ids["restaurant_id"] != ids["user_id"]

    issued = login(client, email)
    assert issued.status_code == 200, issued.text
    token = issued.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] == 3600
    claims = jwt.decode(token["access_token"], TEST_SECRET, algorithms=["HS256"])
    assert claims["sub"] == ids["user_id"]
    assert claims["rid"] == ids["restaurant_id"]
    assert claims["role"] == "owner"
    assert claims["exp"] - claims["iat"] == 3600

    me = client.get("/api/v1/me", headers=bearer(token["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["user_id"] == ids["user_id"]
    assert me.json()["restaurant_id"] == ids["restaurant_id"]
    assert me.json()["role"] == "owner"


def test_email_is_case_insensitive(client: TestClient) -> None:
    email = f"Mixed.Case-{uuid.uuid4().hex[:8]}@Example.COM"
    assert signup(client, email=email).status_code == 201
    assert login(client, "  " + email.lower() + " ").status_code == 200
    # The same address in another case is the same account.
    assert_problem(signup(client, email=email.lower()), 409)


@pytest.mark.parametrize("name", ["Café Zoë", "王小明", "مقهى النخيل"])
def test_names_in_any_language_are_accepted(client: TestClient, name: str) -> None:
    created = signup(client, restaurant_name=name)
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"email": ""}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "x" * 129}, "password"),
        ({"password": "        "}, "password"),
        ({"password": "pass\x00word-long"}, "password"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"timezone": "America"}, "timezone"),
        ({"currency": "usd"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"currency": "€"}, "currency"),
        ({"restaurant_name": ""}, "restaurant_name"),
        ({"restaurant_name": "   "}, "restaurant_name"),
        ({"restaurant_name": "x" * 101}, "restaurant_name"),
        ({"restaurant_name": "Bad\x00Name"}, "restaurant_name"),
        ({"restaurant_name": "Bad\nName"}, "restaurant_name"),
        ({"restaurant_name": "Bell\x07"}, "restaurant_name"),
        ({"restaurant_name": "Zero\u200bWidth"}, "restaurant_name"),
        ({"restaurant_name": 42}, "restaurant_name"),
        ({"is_admin": True}, "is_admin"),
        ({"role": "owner"}, "role"),
    ],
)
def test_signup_validation(client: TestClient, overrides: dict[str, Any], field: str) -> None:
    body = assert_problem(signup(client, **overrides), 422)
    locs = error_locs(body)
    assert ["body", field] in locs, locs


@pytest.mark.parametrize("missing", ["restaurant_name", "email", "password"])
def test_signup_requires_fields(client: TestClient, missing: str) -> None:
    body = {"restaurant_name": "Blue Bottle", "email": unique_email(), "password": PASSWORD}
    del body[missing]
    problem = assert_problem(client.post("/api/v1/signup", json=body), 422)
    assert ["body", missing] in error_locs(problem)


@pytest.mark.parametrize(
    "raw",
    [b"{", b"[]", b"null", b"\xff\xfe not json", b'{"restaurant_name": "x"'],
)
def test_signup_with_malformed_json_is_422(client: TestClient, raw: bytes) -> None:
    response = client.post(
        "/api/v1/signup", content=raw, headers={"Content-Type": "application/json"}
    )
    error_locs(assert_problem(response, 422))


def test_duplicate_email_is_409(mysql_client: TestClient) -> None:
    email = unique_email("dup")
    assert signup(mysql_client, email=email).status_code == 201
    body = assert_problem(signup(mysql_client, email=email, restaurant_name="Copycat"), 409)
    assert "email" in body["detail"].lower()
    # The first account is untouched: its password still works, a second password does not.
    assert login(mysql_client, email).status_code == 200


def test_duplicate_email_is_409_embedded(sqlite_client: TestClient) -> None:
    email = unique_email("dup")
    assert signup(sqlite_client, email=email).status_code == 201
    assert_problem(signup(sqlite_client, email=email, password="another password"), 409)
    assert_unauthorized(login(sqlite_client, email, "another password"))


@pytest.fixture(scope="module")
def closed_client(mysql_engine: Engine) -> Iterator[TestClient]:
    app = create_app(make_settings(signup_enabled=False))
    with TestClient(app) as client:
        yield client


def test_signup_can_be_switched_off(closed_client: TestClient) -> None:
    email = unique_email("closed")
    response = signup(closed_client, email=email)
    assert response.status_code in {403, 404}, response.text
    assert_problem(response, response.status_code)
    assert_unauthorized(login(closed_client, email))


def test_signed_up_owner_can_still_log_in_when_signup_is_off(
    mysql_client: TestClient, closed_client: TestClient
) -> None:
    email = unique_email("before")
    assert signup(mysql_client, email=email).status_code == 201
    assert login(closed_client, email).status_code == 200


def test_wrong_password_and_unknown_email_are_401_alike(client: TestClient, org: Org) -> None:
    wrong_password = assert_unauthorized(login(client, org.owner.email, "not the password"))
    unknown = assert_unauthorized(login(client, unique_email("nobody")))
    assert wrong_password["detail"] == unknown["detail"]


def test_token_form_needs_both_fields(client: TestClient) -> None:
    error_locs(assert_problem(client.post("/api/v1/auth/token", data={"username": "a@b.co"}), 422))
    error_locs(
        assert_problem(
            client.post("/api/v1/auth/token", json={"username": "a@b.co", "password": PASSWORD}),
            422,
        )
    )


def test_me_without_credentials_is_401(client: TestClient) -> None:
    assert_unauthorized(client.get("/api/v1/me"))


def test_accented_emails_are_distinct_accounts_on_mariadb(mysql_client: TestClient) -> None:
    tag = uuid.uuid4().hex[:8]
    assert signup(mysql_client, email=f"zoë-{tag}@example.com").status_code == 201
    assert signup(mysql_client, email=f"zoe-{tag}@example.com").status_code == 201
