"""The `coffeeshop` command line on the embedded default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from coffeeshop.api import cli


def test_migrate_creates_the_schema_on_a_fresh_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "fresh.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.delenv("REDIS_URL", raising=False)

    assert cli.main(["migrate"]) == 0
    assert cli.main(["migrate"]) == 0  # idempotent

    tables = set(inspect(create_engine(f"sqlite:///{database}")).get_table_names())
    assert {"events", "outbox", "restaurant_sequences", "idempotency_keys", "users"} <= tables
    assert "latest schema" in capsys.readouterr().out


def test_serve_refuses_several_workers_on_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(SystemExit, match="one worker"):
        cli.main(["serve", "--workers", "2"])


def test_invalid_configuration_is_reported_readably(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "change-me")
    with pytest.raises(SystemExit, match="invalid configuration"):
        cli.main(["migrate"])


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "coffeeshop"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=True)
    assert "serve" in result.stdout
    assert "migrate" in result.stdout


def test_demo_builds_a_restaurant_through_the_command_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "demo.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")

    assert cli.main(["demo", "--orders", "40", "--days", "4"]) == 0

    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        types = dict(conn.exec_driver_sql("SELECT type, COUNT(*) FROM events GROUP BY type").all())
        users = conn.exec_driver_sql("SELECT COUNT(*) FROM users").scalar()
    assert types["CategoryCreated"] == 6
    assert types["MenuItemAdded"] == 40
    assert types["OrderPlaced"] == 40
    assert types["OrderPaid"] + types.get("OrderCancelled", 0) == 40
    assert types["OrderPaid"] >= 30
    assert users == 4
    out = capsys.readouterr().out
    assert "owner login" in out
    assert "cs_" in out
