"""Bearer tokens and POS API keys that must not get in."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.conftest import TEST_SECRET
from tests.e2e.helpers import Org, Tenant, assert_problem, assert_unauthorized, bearer


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _claims(tenant: Tenant, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": tenant.user_id,
        "rid": tenant.restaurant_id,
        "role": "owner",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_a_token_crafted_with_the_right_secret_works(client: TestClient, org: Org) -> None:
    """The positive control: the tokens below fail for the reason they claim, not another."""
    token = jwt.encode(_claims(org.owner), TEST_SECRET, algorithm="HS256")
    me = client.get("/api/v1/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["restaurant_id"] == org.owner.restaurant_id


def test_a_real_token_works(client: TestClient, org: Org) -> None:
    assert client.get("/api/v1/me", headers=org.owner.headers).status_code == 200


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "", "Bearer", "eyJhbGciOiJIUzI1NiJ9..", "x" * 5000, "ünïcødé"],
)
def test_garbage_tokens_are_401(client: TestClient, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    try:
        response = client.get("/api/v1/me", headers=headers)
    except UnicodeEncodeError:  # httpx refuses non-ASCII header values; send raw bytes
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}".encode()})  # type: ignore[dict-item]
    assert_unauthorized(response)


def test_a_token_signed_with_another_secret_is_401(client: TestClient, org: Org) -> None:
    token = jwt.encode(
        _claims(org.owner), "another-secret-that-is-long-enough-for-hs256-xyz", algorithm="HS256"
    )
    assert_unauthorized(client.get("/api/v1/me", headers=bearer(token)))


def test_a_tampered_payload_is_401(client: TestClient, org: Org) -> None:
    """Staff token with the payload swapped for an owner's: the signature no longer matches."""
    header, _payload, signature = org.staff.token.split(".")
    forged = ".".join([header, _b64(_claims(org.staff, role="owner")), signature])
    assert_unauthorized(client.get("/api/v1/users", headers=bearer(forged)))


def test_an_expired_token_is_401(client: TestClient, org: Org) -> None:
    now = int(time.time())
    token = jwt.encode(
        _claims(org.owner, iat=now - 7200, exp=now - 3600), TEST_SECRET, algorithm="HS256"
    )
    assert_unauthorized(client.get("/api/v1/me", headers=bearer(token)))


def test_alg_none_is_401(client: TestClient, org: Org) -> None:
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(org.owner))}."
    assert_unauthorized(client.get("/api/v1/me", headers=bearer(unsigned)))
    # Also the variants some libraries used to accept.
    for alg in ("None", "NONE", "nOnE"):
        unsigned = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(_claims(org.owner))}."
        assert_unauthorized(client.get("/api/v1/me", headers=bearer(unsigned)))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_another_algorithm_with_the_right_secret_is_401(
    client: TestClient, org: Org, algorithm: str
) -> None:
    token = jwt.encode(_claims(org.owner), TEST_SECRET, algorithm=algorithm)
    assert_unauthorized(client.get("/api/v1/me", headers=bearer(token)))


@pytest.mark.parametrize("claim", ["sub", "rid", "role", "exp", "iat"])
def test_a_token_missing_a_claim_is_401(client: TestClient, org: Org, claim: str) -> None:
    token = jwt.encode(_claims(org.owner, **{claim: None}), TEST_SECRET, algorithm="HS256")
    assert_unauthorized(client.get("/api/v1/me", headers=bearer(token)))


@pytest.mark.parametrize(
    "changes",
    [
        {"role": "superuser"},
        {"role": ""},
        {"role": None},
        {"exp": "tomorrow"},
        {"iat": "yesterday"},
        {"rid": None},
    ],
)
def test_a_token_with_bad_claims_is_401(
    client: TestClient, org: Org, changes: dict[str, Any]
) -> None:
    token = jwt.encode(_claims(org.owner, **changes), TEST_SECRET, algorithm="HS256")
    assert_unauthorized(client.get("/api/v1/me", headers=bearer(token)))


def test_other_auth_schemes_are_401(client: TestClient, org: Org) -> None:
    basic = base64.b64encode(f"{org.owner.email}:x".encode()).decode()
    assert_unauthorized(client.get("/api/v1/me", headers={"Authorization": f"Basic {basic}"}))
    assert_unauthorized(client.get("/api/v1/me", headers={"Authorization": org.owner.token}))


def test_an_unknown_api_key_is_401(client: TestClient, org: Org) -> None:
    for key in ("cs_" + "A" * 43, "nope", org.pos_key[:-1], org.pos_key + "x", org.pos_key.upper()):
        assert_unauthorized(client.get("/api/v1/tables", headers={"X-API-Key": key}))


def test_a_revoked_api_key_is_401_at_once(client: TestClient, org: Org) -> None:
    created = client.post(
        "/api/v1/api-keys", json={"name": "Till to revoke"}, headers=org.manager.headers
    )
    assert created.status_code == 201, created.text
    key, key_id = created.json()["key"], created.json()["id"]
    pos = {"X-API-Key": key}
    me = client.get("/api/v1/me", headers=pos)
    assert me.status_code == 200, me.text
    assert me.json()["role"] == "pos"
    assert me.json()["user_id"] is None
    assert me.json()["restaurant_id"] == org.owner.restaurant_id

    revoked = client.delete(f"/api/v1/api-keys/{key_id}", headers=org.owner.headers)
    assert revoked.status_code == 204, revoked.text
    assert revoked.content == b""

    assert_unauthorized(client.get("/api/v1/me", headers=pos))
    assert_unauthorized(client.get("/api/v1/tables", headers=pos))
    [entry] = [k for k in _all_keys(client, org) if k["id"] == key_id]
    assert entry["revoked_at"] is not None
    # The shared key of the same restaurant is not affected.
    assert client.get("/api/v1/me", headers=org.pos_headers).status_code == 200


def test_revoking_an_unknown_key_is_404(client: TestClient, org: Org) -> None:
    assert_problem(
        client.delete(f"/api/v1/api-keys/{uuid.uuid4()}", headers=org.owner.headers), 404
    )
    assert_problem(client.delete("/api/v1/api-keys/not-a-uuid", headers=org.owner.headers), 404)


def test_the_key_itself_is_never_listed(client: TestClient, org: Org) -> None:
    keys = _all_keys(client, org)
    assert org.pos_key_id in {k["id"] for k in keys}
    for entry in keys:
        assert "key" not in entry
        assert "key_hash" not in entry
        assert org.pos_key not in json.dumps(entry)
    [shared] = [k for k in keys if k["id"] == org.pos_key_id]
    assert org.pos_key.startswith(shared["prefix"])
    assert len(shared["prefix"]) < len(org.pos_key) // 2


def _all_keys(client: TestClient, org: Org) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 50}
    while True:
        page = client.get("/api/v1/api-keys", params=params, headers=org.owner.headers)
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        if not page.json()["has_more"]:
            return items
        params = {"limit": 50, "cursor": page.json()["next_cursor"]}
