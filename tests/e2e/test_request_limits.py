"""Request bodies: over 64 KB is 413 before any route runs; unknown fields are 422 on every
command (the OpenAPI document says so for each request body, so new routes are covered)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from coffeeshop.api.middleware import MAX_BODY_BYTES
from tests.e2e.helpers import Org, assert_common_headers, assert_problem, error_locs


def _events(client: TestClient, org: Org) -> int:
    orders = client.get("/api/v1/orders", headers=org.owner.headers).json()
    return int(orders["total"])


def test_a_body_over_64_kb_is_413_and_writes_nothing(client: TestClient, org: Org) -> None:
    before = _events(client, org)
    body = {"items": [], "notes": "x" * (MAX_BODY_BYTES + 1)}

    refused = client.post("/api/v1/orders", json=body, headers=org.pos_headers)

    problem = assert_problem(refused, 413)
    assert problem["type"] == "/problems/payload-too-large"
    assert "64 KB" in problem["detail"]
    assert_common_headers(refused)
    assert _events(client, org) == before


def test_a_streamed_body_without_length_is_cut_off_too(client: TestClient, org: Org) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"items": [], "notes": "'
        for _ in range(20):
            yield b"y" * 4096
        yield b'"}'

    refused = client.post(
        "/api/v1/orders",
        content=chunks(),
        headers={**org.pos_headers, "Content-Type": "application/json"},
    )

    assert "content-length" not in refused.request.headers
    assert_problem(refused, 413)


def test_a_body_just_under_the_limit_reaches_validation(client: TestClient, org: Org) -> None:
    body = {"items": [], "notes": "z" * (MAX_BODY_BYTES - 100)}
    answer = client.post("/api/v1/orders", json=body, headers=org.pos_headers)
    assert answer.status_code == 422  # too long a note, too few items: not 413


def test_an_unknown_field_on_a_command_is_422_naming_it(client: TestClient, org: Org) -> None:
    answer = client.post(
        "/api/v1/menu/categories",
        json={"name": "Tea", "colour": "green"},
        headers=org.owner.headers,
    )
    body = assert_problem(answer, 422)
    assert ["body", "colour"] in error_locs(body)


def _schema(document: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    name = reference["$ref"].rsplit("/", 1)[-1]
    schema: dict[str, Any] = document["components"]["schemas"][name]
    return schema


def test_every_json_request_body_in_the_api_forbids_unknown_fields(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    checked = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            schema = _schema(document, content["application/json"]["schema"])
            assert schema.get("additionalProperties") is False, (method, path, schema)
            checked.append((method, path))
    assert len(checked) >= 12, checked  # orders, menu, staff, tables, keys, signup
