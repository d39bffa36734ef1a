"""Configuration from the environment, production safety checks, liveness and readiness."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine

from coffeeshop.api.app import create_app
from coffeeshop.api.settings import DEV_SECRET_KEY, Settings
from tests.conftest import MYSQL_URL, REDIS_URL, make_settings
from tests.e2e.helpers import Org, assert_common_headers, assert_problem, assert_unauthorized, login

ENV_NAMES = tuple(name.upper() for name in Settings.model_fields)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean environment: only what the test sets."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


def _settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


# -- production refuses weak secrets ---------------------------------------------------------


def test_production_with_the_default_secret_is_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        _settings()
    env.setenv("SECRET_KEY", DEV_SECRET_KEY)
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        _settings()


@pytest.mark.parametrize(
    "secret", ["short", "x" * 31, "changeme", "SECRET", secrets.token_urlsafe(16)]
)
def test_production_with_a_short_or_weak_secret_is_refused(
    env: pytest.MonkeyPatch, secret: str
) -> None:
    env.setenv("ENVIRONMENT", "production")
    env.setenv("SECRET_KEY", secret)
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        _settings()


def test_production_refuses_debug(env: pytest.MonkeyPatch) -> None:
    env.setenv("ENVIRONMENT", "production")
    env.setenv("SECRET_KEY", secrets.token_urlsafe(36))
    env.setenv("DEBUG", "true")
    with pytest.raises(ValidationError, match="DEBUG"):
        _settings()


def test_weak_secrets_are_fine_outside_production(env: pytest.MonkeyPatch) -> None:
    for environment in ("development", "test", "staging"):
        env.setenv("ENVIRONMENT", environment)
        assert _settings().secret_key.get_secret_value() == DEV_SECRET_KEY


def test_production_with_a_strong_secret_serves_and_signs_with_it(
    env: pytest.MonkeyPatch, mysql_client: TestClient, mysql_org: Org
) -> None:
    strong = secrets.token_urlsafe(36)
    assert len(strong) == 48
    env.setenv("ENVIRONMENT", "production")
    env.setenv("SECRET_KEY", strong)
    env.setenv("DATABASE_URL", MYSQL_URL)
    env.setenv("REDIS_URL", REDIS_URL)
    env.setenv("LOG_LEVEL", "WARNING")
    settings = _settings()
    assert settings.environment == "production"
    assert settings.secret_key.get_secret_value() == strong
    assert strong not in repr(settings)  # secrets are not printed

    with TestClient(create_app(settings)) as prod:
        issued = login(prod, mysql_org.owner.email)
        assert issued.status_code == 200, issued.text
        token = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        assert prod.get("/api/v1/me", headers=token).status_code == 200
        # The other app signs with another secret: neither accepts the other's tokens.
        assert_unauthorized(mysql_client.get("/api/v1/me", headers=token))
        assert_unauthorized(prod.get("/api/v1/me", headers=mysql_org.owner.headers))


# -- reading the environment -------------------------------------------------------------------


def test_settings_come_from_environment_variables(env: pytest.MonkeyPatch) -> None:
    env.setenv("ENVIRONMENT", "staging")
    env.setenv("DATABASE_URL", "mysql+pymysql://app@db.internal:3306/coffee")
    env.setenv("REDIS_URL", "redis://cache.internal:6379/2")
    env.setenv("DB_POOL_SIZE", "7")
    env.setenv("SIGNUP_ENABLED", "false")
    env.setenv("RATE_LIMIT_ENABLED", "0")
    env.setenv("CONSISTENCY_TIMEOUT_MS", "150")
    env.setenv("log_level", "debug")  # names are case-insensitive, levels normalised
    env.setenv("LOG_FORMAT", "console")
    env.setenv("CORS_ORIGINS", "https://pos.example.com, https://admin.example.com,")
    settings = _settings()
    assert settings.environment == "staging"
    assert settings.database_url == "mysql+pymysql://app@db.internal:3306/coffee"
    assert not settings.uses_sqlite
    assert settings.redis_url == "redis://cache.internal:6379/2"
    assert not settings.embedded
    assert settings.db_pool_size == 7
    assert settings.signup_enabled is False
    assert settings.rate_limit_enabled is False
    assert settings.consistency_timeout_ms == 150
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "console"
    assert settings.cors_origins == ["https://pos.example.com", "https://admin.example.com"]


def test_defaults_are_the_embedded_mode(env: pytest.MonkeyPatch) -> None:
    settings = _settings()
    assert settings.environment == "development"
    assert settings.uses_sqlite
    assert settings.embedded
    assert settings.cors_origins == []
    assert settings.signup_enabled is True


def test_an_empty_redis_url_means_embedded(env: pytest.MonkeyPatch) -> None:
    env.setenv("REDIS_URL", "")
    assert _settings().redis_url is None
    assert _settings().embedded


def test_a_single_cors_origin(env: pytest.MonkeyPatch) -> None:
    env.setenv("CORS_ORIGINS", "https://only.example.com")
    assert _settings().cors_origins == ["https://only.example.com"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ENVIRONMENT", "prod"),
        ("DB_POOL_SIZE", "0"),
        ("DB_POOL_SIZE", "many"),
        ("LOG_LEVEL", "verbose"),
        ("LOG_FORMAT", "xml"),
        ("CONSISTENCY_TIMEOUT_MS", "-1"),
        ("SIGNUP_ENABLED", "perhaps"),
    ],
)
def test_bad_values_are_refused(env: pytest.MonkeyPatch, name: str, value: str) -> None:
    env.setenv(name, value)
    with pytest.raises(ValidationError):
        _settings()


def test_a_dotenv_file_is_read_and_the_environment_wins(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("DB_POOL_SIZE=3\nSIGNUP_ENABLED=false\nCORS_ORIGINS=https://a.example\n")
    env.setenv("DB_POOL_SIZE", "9")
    settings = Settings(_env_file=dotenv)  # type: ignore[call-arg]
    assert settings.db_pool_size == 9
    assert settings.signup_enabled is False
    assert settings.cors_origins == ["https://a.example"]


def test_cors_allows_only_the_configured_origins(embedded_url: str) -> None:
    settings = make_settings(
        database_url=embedded_url, redis_url=None, cors_origins="https://pos.example.com"
    )
    app = create_app(settings)

    async def _boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/boom", _boom)
    with TestClient(app) as client:
        preflight = client.options(
            "/api/v1/me",
            headers={
                "Origin": "https://pos.example.com",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == "https://pos.example.com"
        assert "x-request-id" in preflight.headers

        simple = client.get("/health", headers={"Origin": "https://pos.example.com"})
        assert simple.headers["access-control-allow-origin"] == "https://pos.example.com"
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()
        assert_common_headers(simple)

        # Errors, even the last-resort 500, are readable by the allowed origin.
        for response in (
            client.get("/api/v1/me", headers={"Origin": "https://pos.example.com"}),
            client.get("/boom", headers={"Origin": "https://pos.example.com"}),
        ):
            assert response.status_code in {401, 500}
            assert response.headers["access-control-allow-origin"] == "https://pos.example.com"
            assert_common_headers(response)

        evil = client.get("/health", headers={"Origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in evil.headers
        evil_preflight = client.options(
            "/api/v1/me",
            headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in evil_preflight.headers


# -- liveness and readiness --------------------------------------------------------------------


def test_health_is_ok(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert_common_headers(response)


def test_ready_on_mariadb_and_redis(mysql_client: TestClient) -> None:
    response = mysql_client.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["database"] == "healthy"
    assert body["redis"] == "healthy"
    assert isinstance(body["projections"], dict)


def test_ready_embedded(sqlite_client: TestClient) -> None:
    response = sqlite_client.get("/health/ready")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert response.json()["database"] == "healthy"
    assert response.json()["redis"] != "unhealthy"


@pytest.fixture(scope="module")
def dead_database() -> Iterator[TestClient]:
    settings = make_settings(database_url="mysql+pymysql://root@127.0.0.1:1/test")
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_dead_database_is_503_on_ready_only(dead_database: TestClient) -> None:
    started = time.monotonic()
    response = dead_database.get("/health/ready")
    assert time.monotonic() - started < 5
    body = assert_problem(response, 503)
    assert "database" in body["detail"]
    assert_common_headers(response)
    assert "127.0.0.1:1" not in response.text  # no connection details leak

    live = dead_database.get("/health")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}


def test_a_dead_database_is_503_on_requests_too(dead_database: TestClient) -> None:
    """API.md: dependency down is 503, not a bare 500."""
    for response in (
        dead_database.post(
            "/api/v1/auth/token", data={"username": "a@example.com", "password": "whatever1"}
        ),
        dead_database.get("/api/v1/tables", headers={"X-API-Key": "cs_whatever"}),
    ):
        assert_problem(response, 503)
        assert response.headers.get("retry-after")
        assert_common_headers(response)
        assert "pymysql" not in response.text.lower()
        assert "127.0.0.1" not in response.text


def test_a_dead_redis_is_503_on_ready(mysql_engine: Engine) -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings)) as client:
        body = assert_problem(client.get("/health/ready"), 503)
        assert "redis" in body["detail"]
        assert "database" not in body["detail"]
        assert client.get("/health").status_code == 200
