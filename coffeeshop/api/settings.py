"""Application settings: the only place the environment is read."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me-please"  # noqa: S105 - refused in production
MIN_PRODUCTION_SECRET_LENGTH = 32
_WEAK_SECRETS = frozenset({DEV_SECRET_KEY, "changeme", "change-me", "secret", "dev", "test"})


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    environment: Environment = Environment.DEVELOPMENT
    debug: bool = False

    database_url: str = "sqlite:///./coffeeshop.db"
    redis_url: str | None = None
    db_pool_size: int = Field(default=20, ge=1, le=500)
    db_max_overflow: int = Field(default=20, ge=0, le=500)

    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    access_token_expire_minutes: int = Field(default=60, ge=1, le=24 * 60)

    rate_limit_enabled: bool = True
    rate_limit_per_minute: int = Field(default=600, ge=1)
    order_rate_limit: int = Field(default=120, ge=1)
    auth_rate_limit: int = Field(default=10, ge=1)
    signup_enabled: bool = True
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    consistency_timeout_ms: int = Field(default=2000, ge=0, le=30_000)

    metrics_port: int | None = Field(default=None, ge=1, le=65535)

    close_of_day: str = Field(default="23:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    verify_at: str = Field(default="03:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    lag_alert_seconds: float = Field(default=60.0, gt=0)
    outbox_stale_seconds: int = Field(default=30, ge=1)
    bus_partitions: int = Field(default=1, ge=1, le=1024)
    catch_up_seconds: float = Field(default=5.0, gt=0, le=3600)

    sentry_dsn: SecretStr | None = None
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)

    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.JSON

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("redis_url", "sentry_dsn", "metrics_port", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @model_validator(mode="after")
    def _production_needs_a_real_secret(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            secret = self.secret_key.get_secret_value()
            if secret.lower() in _WEAK_SECRETS or len(secret) < MIN_PRODUCTION_SECRET_LENGTH:
                raise ValueError(
                    "SECRET_KEY must be a random value of at least "
                    f"{MIN_PRODUCTION_SECRET_LENGTH} characters in production "
                    '(python -c "import secrets; print(secrets.token_urlsafe(48))")'
                )
            if self.debug:
                raise ValueError("DEBUG must be off in production")
        return self

    @property
    def uses_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def embedded(self) -> bool:
        """No Redis: the bus, cache and rate limits live in this process."""
        return self.redis_url is None
