"""The migrated schema on both backends: the constraints the event store relies on exist and hold.

Read through SQLAlchemy's inspector (what alembic actually created, not what the models say),
and exercised with raw inserts that are rolled back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    UniqueConstraint,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from coffeeshop.api import report_tasks, scheduler
from coffeeshop.api.identity import tables as identity
from coffeeshop.events import schema
from coffeeshop.events.schema import events, idempotency_keys, outbox, restaurant_sequences

MODEL_TABLES = [
    *schema.metadata.sorted_tables,
    *identity.metadata.sorted_tables,
    *report_tasks.metadata.sorted_tables,
    *scheduler.metadata.sorted_tables,
]


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def conn(engine: Engine) -> Iterator[Connection]:
    """A connection whose transaction is always rolled back."""
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            yield connection
        finally:
            transaction.rollback()


def event_row(**overrides: Any) -> dict[str, Any]:
    row = {
        "event_id": new_id(),
        "restaurant_id": new_id(),
        "seq": 1,
        "stream_type": "order",
        "stream_id": new_id(),
        "version": 1,
        "type": "schema.Probed",
        "schema_version": 1,
        "data": {},
        "metadata": {},
        "recorded_at": datetime(2026, 1, 1, 12, 0),
    }
    return row | overrides


def violates_unique(conn: Connection, table: Table, row: dict[str, Any]) -> bool:
    try:
        with conn.begin_nested():
            conn.execute(insert(table), row)
    except IntegrityError:
        return True
    return False


# -- constraints and indexes, as reflected ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("uq_events_stream_version", ["stream_id", "version"]),
        ("uq_events_restaurant_seq", ["restaurant_id", "seq"]),
        ("uq_events_event_id", ["event_id"]),
    ],
)
def test_events_unique_constraints_exist(engine: Engine, name: str, columns: list[str]) -> None:
    found = {c["name"]: c["column_names"] for c in inspect(engine).get_unique_constraints("events")}
    assert found.get(name) == columns


@pytest.mark.parametrize(
    ("table", "columns"),
    [
        ("events", ["id"]),
        ("outbox", ["id"]),
        ("restaurant_sequences", ["restaurant_id"]),
        ("idempotency_keys", ["restaurant_id", "idempotency_key"]),
    ],
)
def test_primary_keys(engine: Engine, table: str, columns: list[str]) -> None:
    assert inspect(engine).get_pk_constraint(table)["constrained_columns"] == columns


@pytest.mark.parametrize("table", ["users", "api_keys", "dining_tables"])
def test_identity_tables_have_a_tenant_index(engine: Engine, table: str) -> None:
    declared = {index.name for index in identity.metadata.tables[table].indexes}
    reflected = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes(table)}
    tenant = {name for name, columns in reflected.items() if columns[0] == "restaurant_id"}
    # The explicitly declared index, not one MariaDB made up for the foreign key.
    assert tenant & declared


def test_idempotency_keys_are_indexed_by_age_for_the_purge(engine: Engine) -> None:
    reflected = {
        i["name"]: i["column_names"] for i in inspect(engine).get_indexes("idempotency_keys")
    }
    assert reflected.get("ix_idempotency_keys_created_at") == ["created_at"]


@pytest.mark.parametrize("table", MODEL_TABLES, ids=lambda t: t.name)
def test_migrations_create_what_the_table_definitions_say(engine: Engine, table: Table) -> None:
    inspector = inspect(engine)
    columns = {c["name"]: c for c in inspector.get_columns(table.name)}
    assert set(columns) == {c.name for c in table.columns}
    for column in table.columns:
        assert bool(columns[column.name]["nullable"]) == column.nullable, column.name
    pk = inspector.get_pk_constraint(table.name)["constrained_columns"]
    assert pk == [c.name for c in table.primary_key.columns]
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes(table.name)}
    for index in table.indexes:
        assert indexes.get(index.name) == [c.name for c in index.columns]
    uniques = {u["name"]: u["column_names"] for u in inspector.get_unique_constraints(table.name)}
    for constraint in table.constraints:
        if isinstance(constraint, UniqueConstraint):
            assert uniques.get(str(constraint.name)) == [c.name for c in constraint.columns]


# -- the constraints hold ---------------------------------------------------------------------


def test_a_stream_version_is_taken_once(conn: Connection) -> None:
    first = event_row()
    conn.execute(insert(events), first)
    same_version = event_row(stream_id=first["stream_id"], version=1)
    assert violates_unique(conn, events, same_version)
    assert not violates_unique(conn, events, event_row(stream_id=first["stream_id"], version=2))


def test_a_restaurant_seq_is_taken_once(conn: Connection) -> None:
    first = event_row()
    conn.execute(insert(events), first)
    assert violates_unique(conn, events, event_row(restaurant_id=first["restaurant_id"], seq=1))
    assert not violates_unique(conn, events, event_row(restaurant_id=first["restaurant_id"], seq=2))
    assert not violates_unique(conn, events, event_row(seq=1))  # another restaurant's seq 1


def test_an_event_id_is_taken_once(conn: Connection) -> None:
    first = event_row()
    conn.execute(insert(events), first)
    assert violates_unique(conn, events, event_row(event_id=first["event_id"]))


def test_sequence_and_idempotency_rows_are_unique_per_restaurant(conn: Connection) -> None:
    restaurant = new_id()
    sequence = {"restaurant_id": restaurant, "last_seq": 0}
    conn.execute(insert(restaurant_sequences), sequence)
    assert violates_unique(conn, restaurant_sequences, sequence)

    key = {
        "restaurant_id": restaurant,
        "idempotency_key": "k",
        "request_hash": "h",
        "status_code": 201,
        "response": {},
        "stream_id": new_id(),
        "created_at": datetime(2026, 1, 1),
    }
    conn.execute(insert(idempotency_keys), key)
    assert violates_unique(conn, idempotency_keys, key | {"request_hash": "other"})
    assert not violates_unique(conn, idempotency_keys, key | {"restaurant_id": new_id()})


def test_outbox_ids_are_generated(conn: Connection) -> None:
    rows = [{"restaurant_id": new_id(), "seq": 1, "created_at": datetime(2026, 1, 1)}] * 3
    conn.execute(insert(outbox), rows)
    ids = (
        conn.execute(select(outbox.c.id).where(outbox.c.restaurant_id == rows[0]["restaurant_id"]))
        .scalars()
        .all()
    )
    assert len(set(ids)) == 3


# -- MariaDB specifics ------------------------------------------------------------------------


def test_mariadb_tables_are_innodb_utf8mb4(mysql_engine: Engine) -> None:
    names = [table.name for table in MODEL_TABLES]
    with mysql_engine.connect() as connection:
        tables = {
            row.TABLE_NAME: (row.ENGINE, row.TABLE_COLLATION)
            for row in connection.execute(
                text(
                    "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES"
                    " WHERE TABLE_SCHEMA = DATABASE()"
                )
            )
        }
        charsets = connection.execute(
            text(
                "SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME"
                " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
                " AND CHARACTER_SET_NAME IS NOT NULL"
            )
        ).all()
    for name in names:
        engine_name, collation = tables[name]
        assert engine_name == "InnoDB", name
        assert collation.startswith("utf8mb4_"), name
    not_utf8mb4 = [(t, c, cs) for t, c, cs in charsets if t in names and cs != "utf8mb4"]
    assert not_utf8mb4 == []
    assert inspect(mysql_engine).get_table_options("events")["mysql_engine"] == "InnoDB"


def test_mariadb_keeps_four_byte_characters_and_microseconds(mysql_engine: Engine) -> None:
    with mysql_engine.connect() as connection, connection.begin() as transaction:
        row = event_row(stream_type="☕🍩", recorded_at=datetime(2026, 1, 1, 12, 0, 0, 123456))
        connection.execute(insert(events), row)
        stored = connection.execute(
            select(events.c.stream_type, events.c.recorded_at).where(
                events.c.event_id == row["event_id"]
            )
        ).one()
        transaction.rollback()
    assert stored.stream_type == "☕🍩"
    assert stored.recorded_at == row["recorded_at"]
