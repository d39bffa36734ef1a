"""Sentry, for every process: the API, relay, projector (and the workers to come)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import sentry_sdk
from sentry_sdk.integrations.logging import ignore_logger

from coffeeshop.api.settings import Settings


def release() -> str:
    try:
        return f"coffeeshop@{version('coffeeshop')}"
    except PackageNotFoundError:  # running from a tree that was never installed
        return "coffeeshop@unknown"


def init_sentry(settings: Settings, process: str) -> bool:
    """Report errors to Sentry when ``SENTRY_DSN`` is set: environment, release, the
    process name as a tag, traces at ``SENTRY_TRACES_SAMPLE_RATE``, and no personal data
    (no headers, cookies, bodies or IPs). Log records at ERROR become events too."""
    if settings.sentry_dsn is None:
        return False
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.environment.value,
        release=release(),
        traces_sample_rate=settings.sentry_traces_sample_rate,
        data_collection={
            "user_info": False,  # no user ids, emails or client IPs
            "http_bodies": [],  # no request bodies (passwords, names)
            "database_query_data": False,
            # Frames' local variables hold request headers (bearer tokens, API keys) and
            # passwords on their way to the hasher: never ship them. Headers themselves go
            # through Sentry's denylist (Authorization and cookies are filtered).
            "stack_frame_variables": False,
        },
    )
    sentry_sdk.set_tag("process", process)
    # Unhandled request errors are captured explicitly, with the request id as a tag
    # (errors.unexpected_error_response); their log line must not make a second event.
    ignore_logger("coffeeshop.errors")
    return True
