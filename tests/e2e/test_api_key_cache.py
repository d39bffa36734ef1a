"""API keys are remembered per API process, yet a revocation in one process takes effect at
once in every other (production runs several workers). Two apps on the same MariaDB and
Redis stand for two worker processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from redis import Redis
from sqlalchemy import Engine, event, update

from coffeeshop.api.app import create_app
from coffeeshop.api.identity.key_cache import REVOCATION_KEY
from coffeeshop.api.identity.tables import api_keys
from tests.conftest import REDIS_URL, make_settings
from tests.e2e.helpers import Tenant, assert_problem, assert_unauthorized, new_tenant


@pytest.fixture
def second_worker(mysql_engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as client:
        yield client


def _new_key(client: TestClient, owner: Tenant) -> tuple[str, str]:
    created = client.post("/api/v1/api-keys", json={"name": "Till"}, headers=owner.headers)
    assert created.status_code == 201, created.text
    return created.json()["key"], created.json()["id"]


def _key_lookups(client: TestClient) -> list[str]:
    """Record the statements that read api_keys through this app's engine."""
    seen: list[str] = []
    engine = client.app.state.container.engine  # type: ignore[attr-defined]

    @event.listens_for(engine, "before_cursor_execute")
    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "FROM api_keys" in statement:
            seen.append(statement)

    return seen


def test_a_known_key_is_answered_from_memory(mysql_client: TestClient) -> None:
    owner = new_tenant(mysql_client)
    key, _ = _new_key(mysql_client, owner)
    pos = {"X-API-Key": key}
    assert mysql_client.get("/api/v1/me", headers=pos).status_code == 200
    lookups = _key_lookups(mysql_client)
    for _ in range(5):
        assert mysql_client.get("/api/v1/me", headers=pos).status_code == 200
    assert lookups == []


def test_a_revocation_in_one_worker_takes_effect_at_once_in_another(
    mysql_client: TestClient, second_worker: TestClient
) -> None:
    owner = new_tenant(mysql_client)
    key, key_id = _new_key(mysql_client, owner)
    other_key, _ = _new_key(mysql_client, owner)
    pos, other_pos = {"X-API-Key": key}, {"X-API-Key": other_key}
    for worker in (mysql_client, second_worker):  # both remember both keys
        assert worker.get("/api/v1/me", headers=pos).status_code == 200
        assert worker.get("/api/v1/me", headers=other_pos).status_code == 200

    revoked = mysql_client.delete(f"/api/v1/api-keys/{key_id}", headers=owner.headers)
    assert revoked.status_code == 204, revoked.text

    for worker in (second_worker, mysql_client):
        assert_unauthorized(worker.get("/api/v1/me", headers=pos))
        assert worker.get("/api/v1/me", headers=other_pos).status_code == 200


def test_a_flushed_redis_does_not_bring_a_stale_entry_back(
    mysql_client: TestClient, second_worker: TestClient
) -> None:
    """The token is random: after a flush and a revocation, no old token value repeats."""
    owner = new_tenant(mysql_client)
    key, key_id = _new_key(mysql_client, owner)
    pos = {"X-API-Key": key}
    redis = Redis.from_url(REDIS_URL)
    try:
        redis.delete(REVOCATION_KEY)
        assert second_worker.get("/api/v1/me", headers=pos).status_code == 200  # cached
        assert (
            mysql_client.delete(f"/api/v1/api-keys/{key_id}", headers=owner.headers).status_code
            == 204
        )
        assert_unauthorized(second_worker.get("/api/v1/me", headers=pos))
    finally:
        redis.close()


def test_without_redis_every_lookup_asks_the_database(mysql_engine: Engine) -> None:
    """Redis down: no revocation could be seen, so nothing is answered from memory. A key
    revoked behind the cache's back (in the database directly) is refused at once."""
    with TestClient(create_app(make_settings())) as up:
        owner = new_tenant(up)
        key, key_id = _new_key(up, owner)
    pos = {"X-API-Key": key}
    down = create_app(make_settings(redis_url="redis://127.0.0.1:1/0"))
    with TestClient(down) as client:
        assert client.get("/api/v1/me", headers=pos).status_code == 200
        with mysql_engine.begin() as conn:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id)
                .values(revoked_at=api_keys.c.created_at)
            )
        assert_unauthorized(client.get("/api/v1/me", headers=pos))


def test_a_revocation_that_cannot_reach_redis_is_503_and_can_be_repeated(
    mysql_engine: Engine,
) -> None:
    with TestClient(create_app(make_settings())) as up:
        owner = new_tenant(up)
        _, key_id = _new_key(up, owner)
        down = create_app(make_settings(redis_url="redis://127.0.0.1:1/0"))
        with TestClient(down) as client:
            assert_problem(client.delete(f"/api/v1/api-keys/{key_id}", headers=owner.headers), 503)
        # The key is revoked in the database; repeating it where Redis answers tells everyone.
        assert up.delete(f"/api/v1/api-keys/{key_id}", headers=owner.headers).status_code == 204
