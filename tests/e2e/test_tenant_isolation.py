"""Tenant isolation over every route of the OpenAPI document, generated, not hand-listed.

Restaurant A has one of everything (category, item, table, user, key, order with a line).
Restaurant B's owner then calls every operation with A's ids: in the path, and in every
``*_id`` field of a request body built from the operation's schema. A foreign id in the
path must answer 404 (or 403), a foreign id in a body must be refused (4xx), and no
response may contain anything of A's. A new route is covered the day it is added; a new
kind of path parameter fails this test until FOREIGN_IDS says what to put there.
"""

from __future__ import annotations

import random
import string
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.e2e.helpers import PASSWORD, Tenant, new_tenant, unique_email

# Not tenant data, or no credentials to cross: checked for leaks only.
OPEN = {("post", "/api/v1/signup"), ("post", "/api/v1/auth/token")}


@dataclass
class Victim:
    tenant: Tenant
    ids: dict[str, str]  # parameter or field name -> one of A's ids
    secrets: list[str]  # strings only A's data contains


def _victim(client: TestClient) -> Victim:
    owner = new_tenant(client, restaurant_name=f"Victim {uuid.uuid4().hex[:8]}")
    secret = "Secret " + "".join(random.choices(string.ascii_lowercase, k=12))
    h = owner.headers

    def created(path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = client.post(path, json=body, headers=h)
        assert answer.status_code == 201, (path, answer.text)
        result: dict[str, Any] = answer.json()
        return result

    category = created("/api/v1/menu/categories", {"name": f"{secret} cat"})["id"]
    item = created(
        "/api/v1/menu/items",
        {"name": f"{secret} latte", "category_id": category, "price_cents": 777},
    )["id"]
    table = created("/api/v1/tables", {"label": secret[:40], "seats": 2})["id"]
    user = created(
        "/api/v1/users", {"email": unique_email("victim"), "password": PASSWORD, "role": "staff"}
    )["id"]
    key = created("/api/v1/api-keys", {"name": f"{secret} till"})["id"]
    order = created(
        "/api/v1/orders",
        {"customer_name": secret, "items": [{"menu_item_id": item, "quantity": 1}]},
    )["id"]
    added = client.post(
        f"/api/v1/orders/{order}/items", json={"menu_item_id": item, "quantity": 2}, headers=h
    )
    assert added.status_code == 200, added.text
    line = added.json()["line_id"]
    report = client.post("/api/v1/reports/daily", json={"date": "2026-03-14"}, headers=h)
    assert report.status_code == 202, report.text
    ids = {
        "category_id": category,
        "item_id": item,
        "menu_item_id": item,
        "table_id": table,
        "user_id": user,
        "key_id": key,
        "order_id": order,
        "line_id": line,
        "task_id": report.json()["task_id"],
        "restaurant_id": owner.restaurant_id,
    }
    return Victim(owner, ids, [secret, *ids.values()])


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    for union in ("anyOf", "oneOf", "allOf"):
        if union in schema:
            options = [s for s in schema[union] if s.get("type") != "null"]
            return _resolve(document, options[0])
    return schema


def _example(
    document: dict[str, Any], schema: dict[str, Any], name: str, ids: dict[str, str]
) -> Any:
    """A valid value for ``schema``, with the victim's id in every field named like one."""
    if name in ids:
        return ids[name]
    schema = _resolve(document, schema)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object":
        return {
            key: _example(document, value, key, ids)
            for key, value in schema.get("properties", {}).items()
            if key in schema.get("required", [])
        }
    if kind == "array":
        item = _example(document, schema.get("items", {}), name, ids)
        return [item] * max(1, schema.get("minItems", 1))
    if kind == "integer":
        return max(1, schema.get("minimum", 1), schema.get("exclusiveMinimum", 0) + 1)
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if schema.get("format") == "email":
        return unique_email("isolation")
    if name == "password":
        return PASSWORD
    return "Isolation probe"


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
    ]


@pytest.fixture(scope="module")
def document(mysql_client: TestClient) -> dict[str, Any]:
    result: dict[str, Any] = mysql_client.get("/openapi.json").json()
    return result


def test_the_generated_probe_covers_every_route(document: dict[str, Any]) -> None:
    operations = _operations(document)
    assert len(operations) >= 35
    with_path_ids = [o for o in operations if "{" in o[1]]
    assert len(with_path_ids) >= 15


def test_no_route_crosses_restaurants(client: TestClient, document: dict[str, Any]) -> None:
    victim = _victim(client)
    intruder = new_tenant(client, restaurant_name="Intruder")
    leaks, wrong = [], []
    for method, path, operation in _operations(document):
        url = path
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert parameter["name"] in victim.ids, f"{method} {path}: add it to the ids"
                url = url.replace("{" + parameter["name"] + "}", victim.ids[parameter["name"]])
        body_schema = (
            operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        )
        body = _example(document, body_schema["schema"], "", victim.ids) if body_schema else None
        answer = client.request(method.upper(), url, json=body, headers=intruder.headers)
        text, sent = answer.text, url + str(body)
        leaked = [s for s in victim.secrets if s in text and s not in sent]  # not echoed
        if leaked:
            leaks.append((method, path, answer.status_code, leaked))
        if (method, path) in OPEN:
            continue
        if "{" in path and answer.status_code not in (403, 404):
            wrong.append((method, path, answer.status_code, text[:200]))
        foreign_in_body = body is not None and any(v in str(body) for v in victim.ids.values())
        if "{" not in path and foreign_in_body and not 400 <= answer.status_code < 500:
            wrong.append((method, path, answer.status_code, text[:200]))
    assert leaks == []
    assert wrong == []
    # A's data is intact and still A's.
    order = victim.ids["order_id"]
    history = client.get(f"/api/v1/orders/{order}/history", headers=victim.tenant.headers)
    if history.status_code == 200:  # where the read side runs in this app
        assert [e["type"] for e in history.json()["items"]] == ["OrderPlaced", "OrderItemAdded"]
    again = client.post(f"/api/v1/orders/{order}/start", headers=victim.tenant.headers)
    assert again.status_code == 200, again.text  # nothing the intruder sent moved it
