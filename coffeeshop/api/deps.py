"""FastAPI dependencies as Annotated aliases: the container, the caller, role checks, paging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Query, Request, Security
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from coffeeshop.api.container import Container
from coffeeshop.api.errors import Forbidden, Unauthorized, Unprocessable
from coffeeshop.api.identity.credentials import InvalidToken
from coffeeshop.api.identity.principal import Principal
from coffeeshop.api.identity.roles import Role
from coffeeshop.queries.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    InvalidCursor,
    PageRequest,
    decode_cursor,
)

bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def get_principal(
    request: Request,
    container: ContainerDep,
    token: Annotated[str | None, Security(bearer_scheme)],
    api_key: Annotated[str | None, Security(api_key_scheme)],
) -> Principal:
    """The one place a request becomes a tenant-scoped caller (JWT for people, key for POS)."""
    if api_key:
        principal = container.identity.principal_for_api_key(api_key)
        if principal is None:
            raise Unauthorized("Invalid or revoked API key")
    elif token:
        try:
            claims = container.tokens.decode(token)
        except InvalidToken as exc:
            raise Unauthorized("Invalid or expired access token") from exc
        principal = Principal(
            restaurant_id=claims.restaurant_id, role=claims.role, user_id=claims.user_id
        )
    else:
        raise Unauthorized()
    request.state.restaurant_id = principal.restaurant_id
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_role(minimum: Role) -> Callable[[Principal], Principal]:
    def check(principal: CurrentPrincipal) -> Principal:
        if not principal.role.at_least(minimum):
            raise Forbidden(f"This needs the {minimum.value} role or stronger")
        return principal

    return check


StaffPrincipal = Annotated[Principal, Depends(require_role(Role.STAFF))]
ManagerPrincipal = Annotated[Principal, Depends(require_role(Role.MANAGER))]


def get_page_request(
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
