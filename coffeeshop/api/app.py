"""The application factory: the composition root of the HTTP service."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator

from coffeeshop.api.container import Container, build_container
from coffeeshop.api.errors import install_error_handlers
from coffeeshop.api.logging import configure_logging
from coffeeshop.api.middleware import (
    AccessLogMiddleware,
    BodySizeLimitMiddleware,
    RateLimitHeadersMiddleware,
    SecurityHeadersMiddleware,
    UnhandledErrorMiddleware,
)
from coffeeshop.api.observability import init_sentry
from coffeeshop.api.openapi import install as install_openapi
from coffeeshop.api.routers import (
    health,
    identity,
    menu_commands,
    menu_queries,
    metrics,
    order_commands,
    order_queries,
    reports,
    staff,
)
from coffeeshop.api.runtime import run_embedded
from coffeeshop.api.settings import Settings

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def is_sane_request_id(value: str) -> bool:
    return bool(_SANE_REQUEST_ID.fullmatch(value))


def create_app(
    settings: Settings | None = None,
    container: Container | None = None,
    read_side: bool | None = None,
) -> FastAPI:
    """Build the API. ``read_side`` runs relay and projectors in-process (default: embedded)."""
    settings = settings or Settings()
    configure_logging(settings)
    init_sentry(settings, "api")
    services = container or build_container(settings)

    in_process = settings.embedded if read_side is None else read_side

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        services.identity.warm()
        worker = asyncio.create_task(run_embedded(services, stop)) if in_process else None
        try:
            yield
        finally:
            stop.set()
            if worker is not None:
                await asyncio.wait_for(worker, timeout=10)
            await services.aclose()

    app = FastAPI(
        title="coffeeshop",
        version="1.0.0",
        description="Orders, menu and daily sales for coffee shops and small restaurants.",
        debug=settings.debug,
        lifespan=lifespan,
    )
    app.state.container = services
    install_error_handlers(app)
    install_openapi(app)
    # Request counts and latencies by route template, method and status class, in a registry
    # of the app's own (several apps in one process, as in tests, must not share series).
    app.state.http_registry = CollectorRegistry(auto_describe=True)
    Instrumentator(excluded_handlers=["/metrics"], registry=app.state.http_registry).instrument(app)
    routers = (
        health,
        identity,
        staff,
        menu_commands,
        menu_queries,
        order_commands,
        order_queries,
        reports,
        metrics,
    )
    for module in routers:
        app.include_router(module.router)

    # Added innermost first: the last one added runs first on the way in.
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(BodySizeLimitMiddleware)
    if settings.cors_origins:
        # Inside the request id and the access log, so preflights carry and log an id too;
        # outside the last-resort 500, so a browser can read that one.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=[
                "Authorization",
                "X-API-Key",
                "Content-Type",
                "Idempotency-Key",
                "If-Match",
                "X-Request-ID",
            ],
            expose_headers=["ETag", "X-Request-ID", "Retry-After", "X-Projection-Stale"],
        )
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(
        CorrelationIdMiddleware,
        header_name="X-Request-ID",
        generator=lambda: str(uuid.uuid4()),
        validator=is_sane_request_id,
        transformer=lambda value: value,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    return app
