"""The row buffer's memory rules: what it keeps between flushes, and that forgetting never
makes it answer wrongly (a rebuild's fresh mode assumes unknown keys are absent)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table

from coffeeshop.projections.rows import RowBuffer

metadata = MetaData()
history = Table(
    "row_buffer_history",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("what", String(20), nullable=False),
)
counters = Table(
    "row_buffer_counters",
    metadata,
    Column("name", String(20), primary_key=True),
    Column("count", BigInteger, nullable=False),
)


@pytest.fixture
def tables(engine: Engine) -> Iterator[Engine]:
    metadata.drop_all(engine)
    metadata.create_all(engine)
    yield engine
    metadata.drop_all(engine)


def test_rows_only_ever_written_are_dropped_and_looked_up_again_if_asked(
    tables: Engine,
) -> None:
    with tables.begin() as conn:
        rows = RowBuffer(lambda: conn, capacity=100, fresh=True)
        for n in range(50):
            rows.insert(history, {"id": n, "what": f"event {n}"})
        rows.add(counters, {"name": "events"}, zeros={"count": 0}, deltas={"count": 50})
        assert rows.flush() == 51
        assert len(rows) == 1  # the counter, which is read, stays; the history rows go
        before = rows.statements
        assert rows.get(history, id=7) == {"id": 7, "what": "event 7"}  # not "absent"
        assert rows.statements == before + 1
        assert rows.get(counters, name="events") == {"name": "events", "count": 50}
        assert rows.statements == before + 1  # from memory


def test_capacity_is_per_table_so_a_big_table_does_not_push_out_a_hot_one(
    tables: Engine,
) -> None:
    with tables.begin() as conn:
        rows = RowBuffer(lambda: conn, capacity=10, fresh=True)
        rows.add(counters, {"name": "hot"}, zeros={"count": 0}, deltas={"count": 1})
        for n in range(30):
            rows.insert(history, {"id": n, "what": "x"})
            rows.get(history, id=n)  # read: kept up to the capacity
        rows.flush()
        before = rows.statements
        rows.add(counters, {"name": "hot"}, zeros={"count": 0}, deltas={"count": 1})
        assert rows.statements == before
        assert len(rows) == 11
        assert rows.get(history, id=29) is not None
        assert rows.get(history, id=0) is not None  # evicted, remembered, read back
        assert rows.statements == before + 1


def test_a_flush_writes_what_changed_since_the_last_one_only(tables: Engine) -> None:
    with tables.begin() as conn:
        rows = RowBuffer(lambda: conn, capacity=100, fresh=True)
        for name in "abcde":
            rows.add(counters, {"name": name}, zeros={"count": 0}, deltas={"count": 1})
        assert rows.flush() == 5
        rows.add(counters, {"name": "c"}, zeros={"count": 0}, deltas={"count": 2})
        assert rows.flush() == 1
        assert rows.flush() == 0
        rows.delete(counters, name="a")
        assert rows.flush() == 1
    with tables.connect() as conn:
        stored = dict(conn.execute(counters.select().order_by(counters.c.name)).all())
    assert stored == {"b": 1, "c": 3, "d": 1, "e": 1}
