"""Who may do what, and that each restaurant sees only its own people, keys and tables."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.helpers import PASSWORD, Org, Tenant, assert_problem, error_locs, unique_email

WRITES = [
    (
        "/api/v1/users",
        lambda: {"email": unique_email("new"), "password": PASSWORD, "role": "staff"},
    ),
    ("/api/v1/api-keys", lambda: {"name": f"Till {uuid.uuid4().hex[:6]}"}),
    ("/api/v1/tables", lambda: {"label": f"T-{uuid.uuid4().hex[:8]}", "seats": 4}),
]


def _headers(org: Org, who: str) -> dict[str, str]:
    return org.pos_headers if who == "pos" else getattr(org, who).headers


@pytest.mark.parametrize(("path", "body"), WRITES, ids=["users", "api-keys", "tables"])
@pytest.mark.parametrize("who", ["owner", "manager"])
def test_owner_and_manager_may_write(
    client: TestClient, org: Org, who: str, path: str, body: Any
) -> None:
    response = client.post(path, json=body(), headers=_headers(org, who))
    assert response.status_code == 201, response.text
    assert response.json()["id"]


@pytest.mark.parametrize(("path", "body"), WRITES, ids=["users", "api-keys", "tables"])
@pytest.mark.parametrize("who", ["staff", "pos"])
def test_staff_and_pos_may_not_write(
    client: TestClient, org: Org, who: str, path: str, body: Any
) -> None:
    assert_problem(client.post(path, json=body(), headers=_headers(org, who)), 403)


@pytest.mark.parametrize("path", ["/api/v1/users", "/api/v1/api-keys"])
@pytest.mark.parametrize("who", ["staff", "pos"])
def test_staff_and_pos_may_not_list_people_or_keys(
    client: TestClient, org: Org, who: str, path: str
) -> None:
    assert_problem(client.get(path, headers=_headers(org, who)), 403)


@pytest.mark.parametrize("who", ["staff", "pos"])
def test_staff_and_pos_may_not_revoke_keys(client: TestClient, org: Org, who: str) -> None:
    response = client.delete(f"/api/v1/api-keys/{org.pos_key_id}", headers=_headers(org, who))
    assert_problem(response, 403)
    assert client.get("/api/v1/me", headers=org.pos_headers).status_code == 200


@pytest.mark.parametrize("who", ["owner", "manager", "staff", "pos"])
def test_everyone_may_list_tables(client: TestClient, org: Org, who: str) -> None:
    response = client.get("/api/v1/tables", headers=_headers(org, who))
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["items"], list)


@pytest.mark.parametrize("who", ["owner", "manager", "staff", "pos"])
def test_me_shows_the_role(client: TestClient, org: Org, who: str) -> None:
    me = client.get("/api/v1/me", headers=_headers(org, who))
    assert me.status_code == 200, me.text
    assert me.json()["role"] == who
    assert me.json()["restaurant_id"] == org.owner.restaurant_id
    if who == "pos":
        assert me.json()["user_id"] is None
    else:
        assert me.json()["user_id"] == getattr(org, who).user_id


@pytest.mark.parametrize("role", ["staff", "manager"])
def test_manager_can_create_staff_and_managers(client: TestClient, org: Org, role: str) -> None:
    email = unique_email(role)
    created = client.post(
        "/api/v1/users",
        json={"email": email, "password": PASSWORD, "role": role},
        headers=org.manager.headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["role"] == role
    assert created.json()["email"] == email
    assert not {"password", "password_hash"} & set(created.json())
    assert PASSWORD not in created.text


@pytest.mark.parametrize("role", ["owner", "pos", "admin", ""])
@pytest.mark.parametrize("who", ["owner", "manager"])
def test_nobody_creates_owners_or_pos_users(
    client: TestClient, org: Org, who: str, role: str
) -> None:
    email = unique_email("escalate")
    response = client.post(
        "/api/v1/users",
        json={"email": email, "password": PASSWORD, "role": role},
        headers=_headers(org, who),
    )
    assert ["body", "role"] in error_locs(assert_problem(response, 422))


def test_user_emails_are_unique_across_restaurants(
    client: TestClient, org: Org, other: Tenant
) -> None:
    """An email is one login: a second restaurant cannot add someone else's address."""
    response = client.post(
        "/api/v1/users",
        json={"email": org.staff.email, "password": PASSWORD, "role": "staff"},
        headers=other.headers,
    )
    assert_problem(response, 409)


def test_table_validation(client: TestClient, org: Org) -> None:
    for body, field in [
        ({"label": "", "seats": 2}, "label"),
        ({"label": "A", "seats": 0}, "seats"),
        ({"label": "x" * 51, "seats": 2}, "label"),
        ({"label": "A", "seats": 101}, "seats"),
        ({"label": "A", "seats": "many"}, "seats"),
        ({"label": "A\x00", "seats": 2}, "label"),
        ({"label": "A", "seats": 2, "restaurant_id": org.owner.restaurant_id}, "restaurant_id"),
    ]:
        response = client.post("/api/v1/tables", json=body, headers=org.manager.headers)
        assert ["body", field] in error_locs(assert_problem(response, 422)), body


def test_duplicate_table_label_is_409(client: TestClient, org: Org, other: Tenant) -> None:
    label = f"Patio {uuid.uuid4().hex[:6]}"
    assert (
        client.post(
            "/api/v1/tables", json={"label": label, "seats": 2}, headers=org.manager.headers
        ).status_code
        == 201
    )
    assert_problem(
        client.post("/api/v1/tables", json={"label": label, "seats": 6}, headers=org.owner.headers),
        409,
    )
    # Labels are per restaurant: another restaurant may use the same one.
    assert (
        client.post(
            "/api/v1/tables", json={"label": label, "seats": 2}, headers=other.headers
        ).status_code
        == 201
    )


# -- tenant isolation ------------------------------------------------------------------------


def _everything(client: TestClient, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 50}
    while True:
        page = client.get(path, params=params, headers=headers)
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        if not page.json()["has_more"]:
            return items
        params = {"limit": 50, "cursor": page.json()["next_cursor"]}


def test_each_restaurant_lists_only_its_own(client: TestClient, org: Org, other: Tenant) -> None:
    mine = f"Mine {uuid.uuid4().hex[:6]}"
    theirs = f"Theirs {uuid.uuid4().hex[:6]}"
    assert (
        client.post(
            "/api/v1/tables", json={"label": mine, "seats": 2}, headers=org.owner.headers
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/api/v1/tables", json={"label": theirs, "seats": 2}, headers=other.headers
        ).status_code
        == 201
    )
    their_key = client.post("/api/v1/api-keys", json={"name": "Their till"}, headers=other.headers)
    assert their_key.status_code == 201

    my_tables = {t["label"] for t in _everything(client, "/api/v1/tables", org.owner.headers)}
    pos_tables = {t["label"] for t in _everything(client, "/api/v1/tables", org.pos_headers)}
    their_tables = {t["label"] for t in _everything(client, "/api/v1/tables", other.headers)}
    assert mine in my_tables
    assert theirs not in my_tables
    assert pos_tables == my_tables
    assert theirs in their_tables
    assert mine not in their_tables

    my_users = {u["id"] for u in _everything(client, "/api/v1/users", org.owner.headers)}
    their_users = {u["id"] for u in _everything(client, "/api/v1/users", other.headers)}
    assert {org.owner.user_id, org.manager.user_id, org.staff.user_id} <= my_users
    assert their_users == {other.user_id}
    assert not my_users & their_users
    for user in _everything(client, "/api/v1/users", org.owner.headers):
        assert not {"password", "password_hash", "restaurant_id"} & set(user), user

    my_keys = {k["id"] for k in _everything(client, "/api/v1/api-keys", org.manager.headers)}
    their_keys = {k["id"] for k in _everything(client, "/api/v1/api-keys", other.headers)}
    assert org.pos_key_id in my_keys
    assert their_key.json()["id"] in their_keys
    assert org.pos_key_id not in their_keys
    assert their_key.json()["id"] not in my_keys


def test_another_restaurants_key_cannot_be_revoked(
    client: TestClient, org: Org, other: Tenant
) -> None:
    response = client.delete(f"/api/v1/api-keys/{org.pos_key_id}", headers=other.headers)
    body = assert_problem(response, 404)
    assert org.pos_key_id not in body["detail"]
    still = client.get("/api/v1/me", headers=org.pos_headers)
    assert still.status_code == 200, still.text
    assert still.json()["restaurant_id"] == org.owner.restaurant_id


def test_me_shows_own_restaurant(client: TestClient, org: Org, other: Tenant) -> None:
    mine = client.get("/api/v1/me", headers=org.owner.headers).json()
    theirs = client.get("/api/v1/me", headers=other.headers).json()
    assert mine["restaurant_id"] == org.owner.restaurant_id
    assert theirs["restaurant_id"] == other.restaurant_id
    assert mine["restaurant_id"] != theirs["restaurant_id"]


def test_a_restaurant_id_in_the_body_is_refused(
    client: TestClient, org: Org, other: Tenant
) -> None:
    """The caller's restaurant comes from the credentials only, never from the body."""
    response = client.post(
        "/api/v1/users",
        json={
            "email": unique_email("sneaky"),
            "password": PASSWORD,
            "role": "staff",
            "restaurant_id": org.owner.restaurant_id,
        },
        headers=other.headers,
    )
    assert ["body", "restaurant_id"] in error_locs(assert_problem(response, 422))
