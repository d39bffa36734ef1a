"""Migrations that reshape tables keep their rows, both ways."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine, inspect, text

from coffeeshop.api.db import make_engine
from coffeeshop.migrations.runner import downgrade, upgrade
from tests.conftest import make_settings

BOTH = pytest.mark.parametrize("own_database_url", ["mysql", "sqlite"], indirect=True)
HISTORY = [
    ("b-order", 1, "r-1", 3, "OrderPlaced", '{"n": 1}', "user:a", "req-1"),
    ("a-order", 1, "r-1", 1, "OrderPlaced", '{"n": 2}', None, None),
    ("a-order", 2, "r-1", 2, "OrderPaid", '{"n": 3}', "user:b", "req-2"),
    ("c-order", 1, "r-2", 1, "OrderPlaced", '{"n": 4}', None, "req-3"),
]


def _history(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT order_id, version, restaurant_id, seq, type, data, actor, request_id "
                "FROM order_history ORDER BY order_id, version"
            )
        ).all()
    return [tuple(row) for row in rows]


@BOTH
def test_0006_rekeys_order_history_by_restaurant_seq_and_keeps_every_row(
    own_database_url: str,
) -> None:
    engine = make_engine(make_settings(database_url=own_database_url, redis_url=None))
    try:
        downgrade(engine, "0005")
        with engine.begin() as conn:
            for row in HISTORY:
                conn.execute(
                    text(
                        "INSERT INTO order_history (order_id, version, restaurant_id, seq, "
                        "type, data, actor, request_id, recorded_at) VALUES "
                        "(:o, :v, :r, :s, :t, :d, :a, :q, :at)"
                    ),
                    dict(zip("ovrstdaq", row, strict=True), at=datetime(2026, 11, 1, 12)),
                )
        before = _history(engine)
        assert inspect(engine).get_pk_constraint("order_history")["constrained_columns"] == [
            "order_id",
            "version",
        ]

        upgrade(engine)
        schema = inspect(engine)
        assert schema.get_pk_constraint("order_history")["constrained_columns"] == [
            "restaurant_id",
            "seq",
        ]
        assert {i["name"] for i in schema.get_indexes("order_history")} == {
            "ix_order_history_restaurant_order"
        }
        assert "part" in schema.get_pk_constraint("projection_rebuilds")["constrained_columns"]
        assert _history(engine) == before

        downgrade(engine, "0005")
        assert inspect(engine).get_pk_constraint("order_history")["constrained_columns"] == [
            "order_id",
            "version",
        ]
        assert _history(engine) == before
        upgrade(engine)
    finally:
        engine.dispose()
