from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from coffeeshop.api.settings import DEV_SECRET_KEY, Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
API_SETTINGS = {
    "ENVIRONMENT",
    "DEBUG",
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY",
    "DB_POOL_SIZE",
    "DB_MAX_OVERFLOW",
    "RATE_LIMIT_ENABLED",
    "RATE_LIMIT_PER_MINUTE",
    "ORDER_RATE_LIMIT",
    "AUTH_RATE_LIMIT",
    "METRICS_PORT",
    "CLOSE_OF_DAY",
    "VERIFY_AT",
    "LAG_ALERT_SECONDS",
    "OUTBOX_STALE_SECONDS",
    "SIGNUP_ENABLED",
    "CONSISTENCY_TIMEOUT_MS",
    "SENTRY_DSN",
    "SENTRY_TRACES_SAMPLE_RATE",
    "LOG_LEVEL",
    "LOG_FORMAT",
}


def _documented() -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", ENV_EXAMPLE.read_text(), re.MULTILINE))


def test_env_example_lists_every_setting() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    assert fields >= API_SETTINGS
    assert fields - _documented() == set()


# Documented in .env.example for compose.yaml and the image, not read by Settings.
DEPLOYMENT = {
    "MYSQL_PASSWORD",
    "MYSQL_ROOT_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    "WEB_WORKERS",
    "PROMETHEUS_MULTIPROC_DIR",
}


def test_every_documented_setting_exists() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    assert _documented() - fields == DEPLOYMENT


def test_every_variable_compose_uses_is_documented() -> None:
    compose = (ENV_EXAMPLE.parent / "compose.yaml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose))
    assert used
    assert used <= _documented()


def test_embedded_default_needs_no_servers() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.uses_sqlite
    assert settings.embedded


@pytest.mark.parametrize("secret", [DEV_SECRET_KEY, "change-me", "short-but-random-x9"])
def test_production_refuses_weak_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None, environment="production", secret_key=secret)  # type: ignore[call-arg, arg-type]


def test_production_accepts_strong_secret() -> None:
    settings = Settings(_env_file=None, environment="production", secret_key="x" * 20 + "Q7" * 10)  # type: ignore[call-arg, arg-type]
    assert settings.environment == "production"


def test_env_example_is_a_valid_development_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text(ENV_EXAMPLE.read_text())
    monkeypatch.chdir(tmp_path)
    for name in Settings.model_fields:  # only the file may speak
        monkeypatch.delenv(name.upper(), raising=False)
    settings = Settings()
    assert settings.embedded
    assert settings.cors_origins == []
    assert settings.sentry_dsn is None
