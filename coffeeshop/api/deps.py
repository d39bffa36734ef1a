"""FastAPI dependencies as Annotated aliases: the container, the caller, role checks, paging."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from coffeeshop.api.container import Container
from coffeeshop.api.errors import Forbidden, Unauthorized, Unprocessable
from coffeeshop.api.identity.credentials import InvalidToken
from coffeeshop.api.identity.principal import Principal
from coffeeshop.api.identity.roles import Role
from coffeeshop.api.ratelimit import Quota
from coffeeshop.queries.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    InvalidCursor,
    PageRequest,
    decode_cursor,
)

bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


# Dependencies that do no I/O are coroutines: FastAPI runs a plain function in the thread
# pool, and a hop there and back costs more than the function itself.


async def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def get_principal(
    request: Request,
    container: ContainerDep,
    token: Annotated[str | None, Security(bearer_scheme)],
    api_key: Annotated[str | None, Security(api_key_scheme)],
) -> Principal:
    """The one place a request becomes a tenant-scoped caller (JWT for people, key for POS),
    and where every authenticated request is counted against its caller's rate limit.

    A coroutine: a token, a known API key and the rate-limit counters are answered on the
    event loop; only an API key this process has not seen goes to the database (in the
    thread pool)."""
    try:
        principal = await _authenticate(container, token, api_key)
    except Unauthorized:
        await container.limiter.hit("auth", client_ip(request))  # guessing keys costs a quota
        raise
    _count(request, await container.limiter.hit("caller", principal.actor))
    request.state.restaurant_id = principal.restaurant_id
    return principal


async def _authenticate(container: Container, token: str | None, api_key: str | None) -> Principal:
    if api_key:
        principal = await container.identity.principal_for_api_key(api_key)
        if principal is None:
            raise Unauthorized("Invalid or revoked API key")
        return principal
    if token:
        try:
            claims = container.tokens.decode(token)
        except InvalidToken as exc:
            raise Unauthorized("Invalid or expired access token") from exc
        return Principal(
            restaurant_id=claims.restaurant_id, role=claims.role, user_id=claims.user_id
        )
    raise Unauthorized()


def client_ip(request: Request) -> str:
    """The peer address (uvicorn puts the forwarded one here for trusted proxies only)."""
    return request.client.host if request.client else "unknown"


def _count(request: Request, quota: Quota | None) -> None:
    """Remember the narrowest quota counted so far: its X-RateLimit-* headers go out with the
    response (RateLimitHeadersMiddleware; routes may return their own Response objects)."""
    if quota is not None:
        request.state.rate_limit = quota


async def limit_anonymous(request: Request, container: ContainerDep) -> None:
    """Signup and token requests: per client IP, at the strict ``auth`` limit."""
    _count(request, await container.limiter.hit("auth", client_ip(request)))


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_role(minimum: Role) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.role.at_least(minimum):
            raise Forbidden(f"This needs the {minimum.value} role or stronger")
        return principal

    return check


async def get_order_creator(
    request: Request, container: ContainerDep, principal: CurrentPrincipal
) -> Principal:
    """The caller of order creation, also counted against the lower ``orders`` limit (on
    top of the caller's limit), before the body is validated."""
    _count(request, await container.limiter.hit("orders", principal.actor))
    return principal


OrderCreator = Annotated[Principal, Depends(get_order_creator)]
StaffPrincipal = Annotated[Principal, Depends(require_role(Role.STAFF))]
ManagerPrincipal = Annotated[Principal, Depends(require_role(Role.MANAGER))]


async def get_page_request(
    skip: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> PageRequest:
    if cursor is None:
        return PageRequest(skip=skip, limit=limit)
    if skip:
        raise Unprocessable(
            "Use either skip or cursor, not both",
            errors=[{"loc": ["query", "skip"], "msg": "must be 0 with a cursor"}],
        )
    try:
        return PageRequest(skip=0, limit=limit, cursor=decode_cursor(cursor))
    except InvalidCursor as exc:
        raise Unprocessable(
            str(exc), errors=[{"loc": ["query", "cursor"], "msg": str(exc)}]
        ) from exc


PageDep = Annotated[PageRequest, Depends(get_page_request)]
