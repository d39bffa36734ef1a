"""End-to-end fixtures: the real app over HTTP (TestClient), on MariaDB and on embedded SQLite.

Password hashing (argon2) is deliberately slow, so the restaurants every test may share are
built once per session and per backend; tests that change state make their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coffeeshop.api.app import create_app
from tests.conftest import make_settings
from tests.e2e.helpers import Org, Tenant, new_tenant


@pytest.fixture(scope="session")
def mysql_client(mysql_engine: Engine) -> Iterator[TestClient]:
    """The app as production runs it: MariaDB and Redis."""
    app = create_app(make_settings())
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="session")
def sqlite_client(embedded_url: str) -> Iterator[TestClient]:
    """The embedded default: a SQLite file, no Redis."""
    app = create_app(make_settings(database_url=embedded_url, redis_url=None))
    with TestClient(app) as client:
        yield client


@pytest.fixture(params=["mysql", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """Both storage backends: what holds in production must hold embedded too."""
    result: str = request.param
    return result


@pytest.fixture
def client(backend: str, request: pytest.FixtureRequest) -> TestClient:
    result: TestClient = request.getfixturevalue(f"{backend}_client")
    return result


def _build_org(client: TestClient) -> Org:
    owner = new_tenant(client, restaurant_name="Org Café")
    manager = owner.add_user("manager")
    staff = owner.add_user("staff")
    created = client.post("/api/v1/api-keys", json={"name": "Till 1"}, headers=owner.headers)
    assert created.status_code == 201, created.text
    return Org(
        owner=owner,
        manager=manager,
        staff=staff,
        pos_key=created.json()["key"],
        pos_key_id=created.json()["id"],
    )


@pytest.fixture(scope="session")
def mysql_org(mysql_client: TestClient) -> Org:
    return _build_org(mysql_client)


@pytest.fixture(scope="session")
def sqlite_org(sqlite_client: TestClient) -> Org:
    return _build_org(sqlite_client)


@pytest.fixture
def org(backend: str, request: pytest.FixtureRequest) -> Org:
    """A restaurant with an owner, a manager, a staff member and a POS key (shared: read only)."""
    result: Org = request.getfixturevalue(f"{backend}_org")
    return result


@pytest.fixture(scope="session")
def mysql_other(mysql_client: TestClient) -> Tenant:
    return new_tenant(mysql_client, restaurant_name="Other Bistro")


@pytest.fixture(scope="session")
def sqlite_other(sqlite_client: TestClient) -> Tenant:
    return new_tenant(sqlite_client, restaurant_name="Other Bistro")


@pytest.fixture
def other(backend: str, request: pytest.FixtureRequest) -> Tenant:
    """A second, unrelated restaurant's owner on the same backend."""
    result: Tenant = request.getfixturevalue(f"{backend}_other")
    return result
