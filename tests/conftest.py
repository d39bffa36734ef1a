"""Shared fixtures: real MariaDB and Redis (production mode) and SQLite (embedded mode).

The servers' addresses come from TEST_DATABASE_URL and TEST_REDIS_URL; the defaults are the
local services that `make test` and CI start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from coffeeshop.api.db import make_engine
from coffeeshop.api.settings import Settings
from coffeeshop.migrations.runner import upgrade

MYSQL_URL = os.environ.get("TEST_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_SECRET = "test-secret-key-that-is-long-enough-for-hs256-0123456789"


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "secret_key": TEST_SECRET,
        "database_url": MYSQL_URL,
        "redis_url": REDIS_URL,
        "log_level": "WARNING",
        "rate_limit_enabled": False,  # tests/e2e/test_rate_limits.py turns it on
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def _reset_mysql(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
        for table in inspect(conn).get_table_names():
            conn.execute(text(f"DROP TABLE IF EXISTS `{table}`"))
        conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))


@pytest.fixture(scope="session")
def mysql_engine() -> Iterator[Engine]:
    """The test database, emptied and migrated once per session; tests isolate by tenant."""
    engine = make_engine(make_settings())
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # pragma: no cover - a setup problem, not a test result
        pytest.exit(f"MariaDB is not reachable at {MYSQL_URL}: {exc}. Run `make services`.", 2)
    _reset_mysql(engine)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("embedded") / "coffeeshop.db"
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(make_settings(database_url=sqlite_url, redis_url=None))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def embedded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated SQLite file for embedded *apps*. They run the relay and projectors in the
    background, so they must not share a file with tests that tail the outbox themselves."""
    url = f"sqlite:///{tmp_path_factory.mktemp('embedded-app') / 'coffeeshop.db'}"
    engine = make_engine(make_settings(database_url=url, redis_url=None))
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(params=["mysql", "sqlite"])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Both storage backends: what must hold in production must hold embedded too."""
    fixture = "mysql_engine" if request.param == "mysql" else "sqlite_engine"
    result: Engine = request.getfixturevalue(fixture)
    return result


@pytest.fixture
def own_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, mysql_engine: Engine
) -> Iterator[str]:
    """A migrated database no other test writes to, for tests that rebuild or compare whole
    projections: ``own_database_url`` is indirect-parametrised with "mysql" or "sqlite"."""
    backend = getattr(request, "param", "mysql")
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'own.db'}"
        engine = make_engine(make_settings(database_url=url, redis_url=None))
        upgrade(engine)
        engine.dispose()
        yield url
        return
    name = f"{mysql_engine.url.database}_own"
    with mysql_engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        conn.execute(text(f"CREATE DATABASE `{name}`"))
    url = mysql_engine.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(make_settings(database_url=url))
    upgrade(engine)
    engine.dispose()
    yield url
    with mysql_engine.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
