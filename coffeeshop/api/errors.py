"""One place that turns every error into RFC 9457 problem+json."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import sentry_sdk
from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from coffeeshop.commands.errors import (
    DomainError,
    InvalidState,
    NotFound,
    RuleViolation,
    VersionMismatch,
)
from coffeeshop.events.errors import (
    ConcurrencyError,
    IdempotencyKeyReused,
)

PROBLEM_JSON = "application/problem+json"
RATE_LIMITED: dict[str, Any] = {
    "description": "Too many requests: problem+json with Retry-After and X-RateLimit-*",
    "content": {PROBLEM_JSON: {}},
}
log = logging.getLogger("coffeeshop.errors")


class AppError(Exception):
    status: int = 500
    slug: str = "internal-error"

    def __init__(
        self,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        errors: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.errors = list(errors) if errors is not None else None


class Unauthorized(AppError):
    status, slug = 401, "unauthorized"

    def __init__(self, detail: str = "Missing or invalid credentials") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status, slug = 403, "forbidden"


class ResourceNotFound(AppError):
    status, slug = 404, "not-found"


class Conflict(AppError):
    status, slug = 409, "conflict"


class PreconditionFailed(AppError):
    status, slug = 412, "precondition-failed"


class Unprocessable(AppError):
    status, slug = 422, "validation-error"


class ServiceUnavailable(AppError):
    status, slug = 503, "service-unavailable"


def problem(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    instance: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"/problems/{slug or phrase.lower().replace(' ', '-')}",
        "title": phrase,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": correlation_id.get(),
    }
    if errors is not None:
        body["errors"] = list(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _domain_to_app(exc: Exception) -> AppError:
    match exc:
        case NotFound():
            return ResourceNotFound(str(exc))
        case InvalidState():
            return Conflict(str(exc))
        case VersionMismatch():
            return PreconditionFailed(str(exc), headers={"ETag": f'"{exc.current}"'})
        case RuleViolation():
            return Unprocessable(str(exc))
        case ConcurrencyError():
            return Conflict(str(exc), headers={"Retry-After": "1"})
        case IdempotencyKeyReused():
            return Unprocessable(str(exc))
        case _:
            return Unprocessable(str(exc))


def _loc(parts: Sequence[Any]) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in parts]


def install_error_handlers(app: FastAPI) -> None:
    async def app_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AppError)
        return problem(
            exc.status,
            exc.detail,
            slug=exc.slug,
            instance=request.url.path,
            errors=exc.errors,
            headers=exc.headers,
        )

    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        return await app_error(request, _domain_to_app(exc))

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        return problem(
            422,
            "The request is not valid",
            slug="validation-error",
            instance=request.url.path,
            errors=errors,
        )

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            # FastAPI's "There was an error parsing the body" (e.g. a body that is not UTF-8):
            # bad input is a validation error like any other (API.md: validation is 422).
            return problem(
                422,
                "The request is not valid",
                slug="validation-error",
                instance=request.url.path,
                errors=[{"loc": ["body"], "msg": str(exc.detail)}],
            )
        return problem(
            exc.status_code,
            str(exc.detail),
            instance=request.url.path,
            headers=dict(exc.headers or {}),
        )

    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # Unreachable, restarting or locked: the dependency is down, not the request bad.
        log.warning("database unavailable on %s", request.url.path, exc_info=exc)
        return problem(
            503,
            "The database is unavailable. Try again shortly.",
            slug="service-unavailable",
            instance=request.url.path,
            headers={"Retry-After": "1"},
        )

    app.add_exception_handler(AppError, app_error)
    app.add_exception_handler(OperationalError, database_unavailable)
    for error_type in (DomainError, ConcurrencyError, IdempotencyKeyReused):
        app.add_exception_handler(error_type, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


def unexpected_error_response(path: str, exc: BaseException) -> JSONResponse:
    """A 500 that says nothing about internals; the stack trace goes to the log and Sentry."""
    log.error("unhandled error on %s", path, exc_info=exc)
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("request_id", correlation_id.get())
        scope.capture_exception(exc)
    return problem(
        500,
        "An unexpected error occurred. Quote the request id when reporting it.",
        slug="internal-error",
        instance=path,
    )
