"""LOAD DATA LOCAL INFILE for a rebuild's inserts: every value arrives exactly as a plain
INSERT would have stored it, and whatever the server would skip or change is an error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)

from coffeeshop.api.db import make_engine
from coffeeshop.events.schema import Timestamp
from coffeeshop.projections import bulkload
from coffeeshop.projections.rows import RowBuffer
from tests.conftest import make_settings

metadata = MetaData()
sample = Table(
    "bulkload_sample",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", String(20), nullable=True),
    Column("notes", Text, nullable=False),
    Column("doc", JSON, nullable=False),
    Column("at", Timestamp, nullable=True),
    Column("day", Date, nullable=True),
    Column("flag", Boolean, nullable=True),
)

AWKWARD = [
    "tab\there",
    "new\nline",
    "back\\slash",
    "\\N",
    "carriage\rreturn",
    "NUL\x00byte",
    "quote ' and \" both",
    "émoji ☕🥐",
    "",
    "\\t literally",
]


def _rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": n,
            "name": None if n % 11 == 0 else AWKWARD[n % len(AWKWARD)][:20],
            "notes": AWKWARD[(n + 3) % len(AWKWARD)] * (n % 3),
            "doc": None if n % 7 == 0 else {"text": AWKWARD[n % len(AWKWARD)], "n": [n, None]},
            "at": None if n % 4 == 0 else datetime(2026, 3, 29, 1, 59, 59, n % 1_000_000),
            "day": None if n % 6 == 0 else date(2026, 1 + n % 12, 1 + n % 28),
            "flag": None if n % 3 == 0 else n % 2 == 0,
        }
        for n in range(1, count + 1)
    ]


@pytest.fixture
def bulk(mysql_engine: Engine) -> Iterator[Engine]:
    engine = make_engine(
        make_settings(), mysql_engine.url.render_as_string(hide_password=False), bulk_load=True
    )
    metadata.drop_all(engine)
    metadata.create_all(engine)
    yield engine
    metadata.drop_all(engine)
    engine.dispose()


def _stored(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(select(sample).order_by(sample.c.id)).mappings()]


def test_every_value_arrives_as_an_insert_would_store_it(bulk: Engine) -> None:
    rows = _rows(300)
    with bulk.begin() as conn:
        assert bulkload.allowed(conn)
        bulkload.load(conn, sample, rows)
    loaded = _stored(bulk)
    with bulk.begin() as conn:
        conn.execute(sample.delete())
        conn.execute(insert(sample), rows)
    assert loaded == _stored(bulk)
    assert loaded[0]["doc"] == {"text": AWKWARD[1], "n": [1, None]}
    assert loaded[6]["doc"] is None  # JSON null, as SQLAlchemy writes None
    assert {row["name"] for row in loaded} >= {"tab\there", "new\nline", "back\\slash", "\\N"}


def test_a_duplicate_key_fails_instead_of_being_skipped(bulk: Engine) -> None:
    rows = _rows(250)
    with bulk.begin() as conn:
        conn.execute(insert(sample), [rows[10]])
    with pytest.raises(bulkload.BulkLoadError, match="loaded 249 of 250"), bulk.begin() as conn:
        bulkload.load(conn, sample, rows)
    assert [row["id"] for row in _stored(bulk)] == [11]  # rolled back with the batch


def test_a_value_the_server_would_change_fails(bulk: Engine) -> None:
    rows = _rows(250)
    rows[3]["name"] = "x" * 21  # one longer than the column
    with pytest.raises(bulkload.BulkLoadError, match="name"), bulk.begin() as conn:
        bulkload.load(conn, sample, rows)
    assert _stored(bulk) == []


def test_an_aware_datetime_is_refused(bulk: Engine) -> None:
    rows = _rows(1)
    rows[0]["at"] = datetime.fromisoformat("2026-01-01T00:00:00+01:00")
    with pytest.raises(ValueError, match="naive"), bulk.begin() as conn:
        bulkload.load(conn, sample, rows)


def test_row_buffers_use_it_for_big_batches_only_where_allowed(
    bulk: Engine,
    mysql_engine: Engine,
    sqlite_engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for engine, expected in ((bulk, True), (mysql_engine, False), (sqlite_engine, False)):
        with engine.connect() as conn:
            assert bulkload.allowed(conn) is expected
    loads: list[int] = []
    real_load = bulkload.load

    def counted(conn: Any, table: Table, rows: Any) -> None:
        loads.append(len(rows))
        real_load(conn, table, rows)

    monkeypatch.setattr(bulkload, "load", counted)
    for count in (bulkload.MIN_ROWS - 1, bulkload.MIN_ROWS):
        with bulk.begin() as conn:
            conn.execute(sample.delete())
            buffer = RowBuffer(lambda: conn)
            for row in _rows(count):
                buffer.insert(sample, row)
            buffer.flush()
        assert len(_stored(bulk)) == count
    assert loads == [bulkload.MIN_ROWS]
