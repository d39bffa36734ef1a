"""The OpenAPI document says what errors look like: every problem status an operation can
answer, as ``application/problem+json`` with the Problem schema (API.md's conventions).

FastAPI documents only the success and a 422 of its own shape (``HTTPValidationError``),
which is not what we send. Clients, and the schema fuzzing in CI, read the real contract.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from coffeeshop.api.errors import PROBLEM_JSON

API_PREFIX = "/api/v1/"
# Any /api/v1 operation: who is asking, how often, how big, and whether we are up.
COMMON = (401, 403, 413, 422, 429, 503)
# What commands add: referenced things missing, state conflicts, stale If-Match.
COMMANDS = (404, 409, 412)
ANONYMOUS = ("/api/v1/signup", "/api/v1/auth/token")


class ProblemError(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is sent."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemError] | None = None


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            document_problems(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document_problems(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, model in (("Problem", Problem), ("ProblemError", ProblemError)):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schema.pop("$defs", None)
        schemas[name] = schema
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            for status in _statuses(path, method):
                operation.setdefault("responses", {})[str(status)] = _problem(status)


def _statuses(path: str, method: str) -> tuple[int, ...]:
    if path == "/health/ready":
        return (503,)
    if not path.startswith(API_PREFIX):
        return ()
    statuses = set(COMMON)
    if method != "get" or "{" in path or path in ANONYMOUS:
        statuses.update(COMMANDS)
    if "{" in path:
        statuses.add(404)
    return tuple(sorted(statuses))


def _problem(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": f"{HTTPStatus(status).phrase} (problem details)",
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status == 429:
        response["headers"] = {
            name: {"schema": {"type": "integer"}, "description": meaning}
            for name, meaning in (
                ("Retry-After", "seconds to wait"),
                ("X-RateLimit-Limit", "requests allowed per minute"),
                ("X-RateLimit-Remaining", "requests left in the window"),
                ("X-RateLimit-Reset", "seconds until the window has room"),
            )
        }
    return response
