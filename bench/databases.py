"""The bench's own databases: settings without a ``.env``, create, empty and migrate, drop."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import make_url

from coffeeshop.api.db import make_engine
from coffeeshop.api.settings import Settings
from coffeeshop.migrations.runner import upgrade


def bench_settings(database_url: str, redis_url: str | None = None, **more: Any) -> Settings:
    """Built in code so no ``.env`` can reach a bench: rate limiting off, warnings only."""
    return Settings(
        _env_file=None,
        database_url=database_url,
        redis_url=redis_url,
        secret_key="x" * 40,
        rate_limit_enabled=False,
        log_level="WARNING",
        **more,
    )


def server_of(database_url: str) -> str:
    """The URL without its database, for CREATE and DROP DATABASE."""
    return make_url(database_url).set(database="").render_as_string(hide_password=False)


def create_database(settings: Settings, server_url: str, name: str) -> None:
    _on_server(
        settings, server_url, f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"
    )


def drop_database(settings: Settings, server_url: str, name: str) -> None:
    _on_server(settings, server_url, f"DROP DATABASE IF EXISTS `{name}`")


def _on_server(settings: Settings, server_url: str, statement: str) -> None:
    admin = make_engine(settings, server_url)
    try:
        with admin.begin() as conn:
            conn.execute(text(statement))
    finally:
        admin.dispose()


def drop_tables(engine: Engine) -> None:
    """Every table of the engine's database, whatever created it."""
    with engine.begin() as conn:
        conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
        for table in sa_inspect(conn).get_table_names():
            conn.execute(text(f"DROP TABLE IF EXISTS `{table}`"))
        conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))


def empty_and_migrate(engine: Engine) -> None:
    drop_tables(engine)
    upgrade(engine)
