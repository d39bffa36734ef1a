"""The MariaDB pool: idle connections are pinged, busy ones are not, and a connection goes
back to the pool outside any transaction without a rollback it does not need."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pymysql
import pytest
from sqlalchemy import Engine, text

from coffeeshop.api import db
from coffeeshop.api.db import make_engine
from coffeeshop.events.registry import registry
from coffeeshop.events.store import EventStore
from tests.conftest import MYSQL_URL, make_settings
from tests.e2e.commands.test_round_trips import round_trips

pytestmark = pytest.mark.mysql


@pytest.fixture
def one_connection(mysql_engine: Engine) -> Iterator[Engine]:
    """A pool of exactly one connection, so each checkout gets the same one back."""
    engine = make_engine(make_settings(db_pool_size=1, db_max_overflow=0))
    _connection_id(engine)  # connected: the dialect's first-connect queries are done
    yield engine
    engine.dispose()


def _connection_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT CONNECTION_ID()")).scalar_one())


def _kill(connection_id: int) -> None:
    url = make_settings().database_url
    admin = make_engine(make_settings(), url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f"KILL CONNECTION {int(connection_id)}"))
    finally:
        admin.dispose()


def _in_transaction(engine: Engine) -> int:
    with round_trips():  # the check's own checkout must not be what rolls back
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("SELECT @@in_transaction")
            (value,) = cursor.fetchone()
            cursor.close()
        finally:
            raw.close()
    return int(value)


def test_a_connection_killed_while_idle_is_replaced_on_checkout(
    one_connection: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.05)
    killed = _connection_id(one_connection)
    _kill(killed)
    time.sleep(0.1)

    with round_trips() as seen:
        replacement = _connection_id(one_connection)

    assert replacement != killed
    assert seen["PING"] == 1


def test_a_busy_connection_is_not_pinged(one_connection: Engine) -> None:
    _connection_id(one_connection)

    with round_trips() as seen:
        _connection_id(one_connection)

    assert seen["PING"] == 0
    assert dict(seen) == {"SELECT": 1, "ROLLBACK": 1}


def test_an_idle_connection_is_pinged(
    one_connection: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.05)
    first = _connection_id(one_connection)
    time.sleep(0.1)

    with round_trips() as seen:
        assert _connection_id(one_connection) == first

    assert seen["PING"] == 1


def test_a_committed_transaction_is_not_rolled_back_again(one_connection: Engine) -> None:
    with round_trips() as seen, one_connection.begin() as conn:
        conn.execute(text("SELECT COUNT(*) FROM restaurant_sequences"))

    assert dict(seen) == {"SELECT": 1, "COMMIT": 1}
    assert _in_transaction(one_connection) == 0


def test_a_rolled_back_transaction_is_not_rolled_back_again(one_connection: Engine) -> None:
    def fail_after_a_read() -> None:
        with one_connection.begin() as conn:
            conn.execute(text("SELECT COUNT(*) FROM restaurant_sequences"))
            raise ZeroDivisionError

    with round_trips() as seen, pytest.raises(ZeroDivisionError):
        fail_after_a_read()

    assert dict(seen) == {"SELECT": 1, "ROLLBACK": 1}
    assert _in_transaction(one_connection) == 0


def test_a_statement_after_the_commit_is_rolled_back(one_connection: Engine) -> None:
    with one_connection.connect() as conn:
        conn.execute(text("SELECT COUNT(*) FROM restaurant_sequences"))
        conn.commit()
        conn.execute(text("SELECT COUNT(*) FROM events"))

    assert _in_transaction(one_connection) == 0


def test_a_connection_returned_mid_transaction_is_rolled_back(one_connection: Engine) -> None:
    restaurant = str(uuid.uuid4())
    raw = one_connection.raw_connection()
    cursor = raw.cursor()
    cursor.execute(
        "INSERT INTO restaurant_sequences (restaurant_id, last_seq, updated_at) "
        "VALUES (%s, 0, NOW())",
        (restaurant,),
    )
    cursor.close()
    raw.close()  # back to the pool, uncommitted

    assert _in_transaction(one_connection) == 0
    with one_connection.connect() as conn:
        found = conn.execute(
            text("SELECT COUNT(*) FROM restaurant_sequences WHERE restaurant_id = :r"),
            {"r": restaurant},
        ).scalar_one()
    assert found == 0


def test_an_event_store_read_ends_its_transaction(one_connection: Engine) -> None:
    store = EventStore(one_connection, registry)

    store.load_stream(str(uuid.uuid4()), str(uuid.uuid4()))
    assert _in_transaction(one_connection) == 0

    with one_connection.connect() as conn:  # a read on a Connection after its commit
        conn.execute(text("SELECT 1"))
        conn.commit()
        store.read_restaurant(str(uuid.uuid4()), conn=conn)
    assert _in_transaction(one_connection) == 0


def test_the_driver_reports_a_dead_connection_as_a_disconnect() -> None:
    """What the checkout ping relies on: a killed connection's ping is a disconnect."""
    engine = make_engine(make_settings(), MYSQL_URL)
    try:
        raw = pymysql.connect(**_driver_args(engine))
        (connection_id,) = _select(raw, "SELECT CONNECTION_ID()")
        _kill(connection_id)
        with pytest.raises(pymysql.err.Error) as caught:
            engine.dialect.do_ping(raw)
        assert engine.dialect.is_disconnect(caught.value, raw, None)
    finally:
        engine.dispose()


def _driver_args(engine: Engine) -> dict[str, object]:
    url = engine.url
    return {
        "host": url.host,
        "port": url.port or 3306,
        "user": url.username,
        "database": url.database,
    }


def _select(raw: pymysql.connections.Connection, sql: str) -> tuple[int, ...]:
    cursor = raw.cursor()
    cursor.execute(sql)
    row = cursor.fetchone()
    cursor.close()
    assert row is not None
    return tuple(int(v) for v in row)
