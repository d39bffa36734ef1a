"""Alembic environment: one set of migrations for MySQL/MariaDB and SQLite."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from coffeeshop.api.identity.tables import metadata as identity_metadata
from coffeeshop.events.schema import metadata as event_metadata
from coffeeshop.projections import catalog  # noqa: F401 - imports every read table
from coffeeshop.projections.schema import metadata as projection_metadata

target_metadata = [event_metadata, identity_metadata, projection_metadata]


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(
        context.config.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool
    )
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `coffeeshop migrate`")
run_migrations_online()
