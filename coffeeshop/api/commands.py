"""HTTP plumbing shared by command routes: context, If-Match, Idempotency-Key, responses."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Annotated, ParamSpec

from asgi_correlation_id import correlation_id
from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from coffeeshop.api.deps import CurrentPrincipal, ManagerPrincipal, OrderCreator
from coffeeshop.api.errors import Unprocessable
from coffeeshop.api.identity.principal import Principal
from coffeeshop.commands.handling import CommandContext, CommandResult, request_fingerprint

P = ParamSpec("P")
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,64}$")
_IF_MATCH = re.compile(r'^(?:W/)?"?(\d{1,10})"?$')


class CommandAccepted(BaseModel):
    id: str
    version: int
    position: int


class OrderLineAdded(CommandAccepted):
    line_id: str


def parse_if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = _IF_MATCH.fullmatch(value.strip())
    if match is None:
        raise Unprocessable(
            'If-Match must be an ETag of this API, e.g. "3"',
            errors=[{"loc": ["header", "If-Match"], "msg": "not a version ETag"}],
        )
    return int(match.group(1))


async def _fingerprint(request: Request) -> str:
    raw = await request.body()
    try:
        body: object = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("latin-1")
    return request_fingerprint(request.method, request.url.path, body)


async def _context(
    request: Request,
    principal: Principal,
    idempotency_key: str | None,
    if_match: str | None,
) -> CommandContext:
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        raise Unprocessable(
            "Idempotency-Key must be 1 to 64 visible ASCII characters",
            errors=[{"loc": ["header", "Idempotency-Key"], "msg": "1 to 64 visible characters"}],
        )
    return CommandContext(
        restaurant_id=principal.restaurant_id,
        actor=principal.actor,
        request_id=correlation_id.get(),
        idempotency_key=idempotency_key,
        request_hash=await _fingerprint(request) if idempotency_key else None,
        if_match=parse_if_match(if_match),
    )


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="Retry-safe key (1-64 chars), kept 24 h"),
]
IfMatchHeader = Annotated[
    str | None, Header(alias="If-Match", description='Expected version, e.g. "3"')
]


async def any_command_context(
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKeyHeader = None,
    if_match: IfMatchHeader = None,
) -> CommandContext:
    return await _context(request, principal, idempotency_key, if_match)


async def manager_command_context(
    request: Request,
    principal: ManagerPrincipal,
    idempotency_key: IdempotencyKeyHeader = None,
    if_match: IfMatchHeader = None,
) -> CommandContext:
    return await _context(request, principal, idempotency_key, if_match)


async def order_creation_context(
    request: Request,
    principal: OrderCreator,
    idempotency_key: IdempotencyKeyHeader = None,
    if_match: IfMatchHeader = None,
) -> CommandContext:
    return await _context(request, principal, idempotency_key, if_match)


OrderContext = Annotated[CommandContext, Depends(any_command_context)]
NewOrderContext = Annotated[CommandContext, Depends(order_creation_context)]
MenuContext = Annotated[CommandContext, Depends(manager_command_context)]


async def execute(
    command: Callable[P, CommandResult], *args: P.args, **kwargs: P.kwargs
) -> JSONResponse:
    """Run a command (blocking: it loads and appends) in the thread pool, in one hop; the
    routes are coroutines, so FastAPI does not spend a hop of its own on them."""
    return command_response(await run_in_threadpool(command, *args, **kwargs))


def command_response(result: CommandResult) -> JSONResponse:
    headers = {"ETag": f'"{result.version}"'}
    if result.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)
