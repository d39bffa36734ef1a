"""How many times one command talks to MariaDB: each round trip is latency and server CPU.

Counted in the driver, where every query, commit, rollback and ping goes to the server,
including the ones SQLAlchemy sends on its own (pool pings and resets) and the raw cursor
reads of the event store.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio.to_thread
import pymysql.connections
import pytest
from pymysql.constants import COMMAND
from sqlalchemy import Engine, text

from coffeeshop.api import db
from coffeeshop.api.db import make_engine
from tests.conftest import make_settings
from tests.e2e.commands.conftest import Shop

PLACED_ORDER_ROUND_TRIPS = 8  # the API key is answered from the process's key cache
PLACED_ORDER_THREAD_HOPS = 1  # the command; the caller and rate limits are on the event loop
REPLAYED_ORDER_ROUND_TRIPS = 6


@contextmanager
def round_trips() -> Iterator[Counter[str]]:
    """Every command the driver sends meanwhile, by its first word (PING for pings)."""
    seen: Counter[str] = Counter()
    original = pymysql.connections.Connection._execute_command

    def counting(self: Any, command: int, sql: Any) -> Any:
        if command == COMMAND.COM_QUERY:
            text = sql.decode() if isinstance(sql, bytes) else str(sql)
            seen[text.split(None, 1)[0].upper()] += 1
        elif command == COMMAND.COM_PING:
            seen["PING"] += 1
        else:
            seen[f"COMMAND {command}"] += 1
        return original(self, command, sql)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pymysql.connections.Connection, "_execute_command", counting)
        yield seen


def _order_body(items: list[str]) -> dict[str, Any]:
    return {"customer_name": "Ann", "items": [{"menu_item_id": i, "quantity": 2} for i in items]}


@pytest.fixture(scope="module")
def menu(mysql_pair: Any) -> list[str]:
    shop: Shop = mysql_pair.main
    category = shop.category()
    return [shop.item(category) for _ in range(3)]


def _post(shop: Shop, body: dict[str, Any], key: str) -> Any:
    assert shop.pos is not None
    return shop.send("POST", "/api/v1/orders", body, shop.pos, {"Idempotency-Key": key})


def test_placing_an_order_stays_within_its_round_trips(mshop: Shop, menu: list[str]) -> None:
    body = _order_body(menu)
    for _ in range(3):  # warm: pool connections, the key's principal, the restaurant's sequence
        assert _post(mshop, body, f"warm-{uuid.uuid4()}").status_code == 201

    with round_trips() as seen:
        response = _post(mshop, body, f"key-{uuid.uuid4()}")

    assert response.status_code == 201, response.text
    total = sum(seen.values())
    print(f"placed order: {total} round trips {dict(seen)}")
    assert total <= PLACED_ORDER_ROUND_TRIPS, dict(seen)


def test_replaying_an_order_stays_within_its_round_trips(mshop: Shop, menu: list[str]) -> None:
    body = _order_body(menu)
    key = f"key-{uuid.uuid4()}"
    assert _post(mshop, body, key).status_code == 201

    with round_trips() as seen:
        response = _post(mshop, body, key)

    assert response.headers["idempotent-replayed"] == "true"
    total = sum(seen.values())
    print(f"replayed order: {total} round trips {dict(seen)}")
    assert total <= REPLAYED_ORDER_ROUND_TRIPS, dict(seen)


def test_placing_an_order_hops_to_the_thread_pool_once(
    mshop: Shop, menu: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = _order_body(menu)
    assert _post(mshop, body, f"warm-{uuid.uuid4()}").status_code == 201
    hops: list[str] = []
    original = anyio.to_thread.run_sync

    async def counting(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(getattr(func, "func", func), "__qualname__", "?"))
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    response = _post(mshop, body, f"key-{uuid.uuid4()}")

    assert response.status_code == 201, response.text
    assert len(hops) <= PLACED_ORDER_THREAD_HOPS, hops


def test_connections_killed_while_idle_do_not_fail_the_next_order(
    mshop: Shop, menu: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.05)
    body = _order_body(menu)
    assert _post(mshop, body, f"key-{uuid.uuid4()}").status_code == 201
    _kill_pooled_connections(mshop.engine)
    time.sleep(0.1)

    response = _post(mshop, body, f"key-{uuid.uuid4()}")

    assert response.status_code == 201, response.text


def _kill_pooled_connections(engine: Engine) -> None:
    """Every connection the app's pool holds, killed by the server (as a restart would)."""
    held = [engine.connect() for _ in range(engine.pool.checkedin())]  # type: ignore[attr-defined]
    ids = [conn.execute(text("SELECT CONNECTION_ID()")).scalar_one() for conn in held]
    for conn in held:
        conn.close()
    admin = make_engine(make_settings())
    try:
        with admin.connect() as conn:
            for connection_id in ids:
                conn.execute(text(f"KILL CONNECTION {int(connection_id)}"))
    finally:
        admin.dispose()
