"""Schemathesis against our own OpenAPI document, authenticated, on MariaDB + Redis: every
operation gets generated requests (valid and invalid); no response may be a 5xx, and every
response must match what the document says (status, media type, body schema).

One test per operation (a new route gets its own the day it is added), each a bounded
hypothesis run. Schemathesis's own pytest plugin is not used: it needs pytest < 9.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from sqlalchemy import Engine

from coffeeshop.api.app import create_app
from tests.conftest import make_settings
from tests.e2e.helpers import new_tenant

EXAMPLES = 15  # per operation: bounded, so CI stays fast
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
APP = create_app(make_settings())  # engine and clients connect lazily, in the tests
SCHEMA = schemathesis.openapi.from_asgi("/openapi.json", APP)
OPERATIONS = [(op.ok().method.upper(), op.ok().path) for op in SCHEMA.get_all_operations()]


@pytest.fixture(scope="module")
def app(mysql_engine: Engine) -> Iterator[FastAPI]:
    with TestClient(APP):  # runs the lifespan
        yield APP


@pytest.fixture(scope="module")
def auth(app: FastAPI) -> dict[str, str]:
    with TestClient(app) as client:
        owner = new_tenant(client, restaurant_name="Fuzzed Café")
    return owner.headers


def test_every_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) >= 35


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_5xx_and_every_response_as_documented(
    method: str, path: str, auth: dict[str, str]
) -> None:
    operation = SCHEMA[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        # Our credentials, not generated ones (those are only ever 401: documented, dull).
        generated = case.headers or {}
        case.headers = {
            k: v for k, v in generated.items() if k.lower() not in ("authorization", "x-api-key")
        }
        case.call_and_validate(headers=auth, checks=CHECKS)

    run()
