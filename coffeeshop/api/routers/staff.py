"""Users, POS API keys and dining tables of the caller's restaurant."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from coffeeshop.api.deps import ContainerDep, CurrentPrincipal, ManagerPrincipal, PageDep
from coffeeshop.api.identity.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    TableCreate,
    TablePublic,
    UserCreate,
    UserPublic,
)
from coffeeshop.queries.pagination import Page

router = APIRouter(prefix="/api/v1")


@router.post("/users", status_code=status.HTTP_201_CREATED, tags=["users"])
def create_user(body: UserCreate, caller: ManagerPrincipal, container: ContainerDep) -> UserPublic:
    """Add a manager or staff member to the restaurant."""
    return container.identity.create_user(caller, body)


@router.get("/users", tags=["users"])
def list_users(
    caller: ManagerPrincipal, page: PageDep, container: ContainerDep
) -> Page[UserPublic]:
    """The restaurant's users, oldest first."""
    return container.identity.list_users(caller, page)


@router.post("/api-keys", status_code=status.HTTP_201_CREATED, tags=["api-keys"])
def create_api_key(
    body: ApiKeyCreate, caller: ManagerPrincipal, container: ContainerDep
) -> ApiKeyCreated:
    """Issue a POS device key; the key is in this response only."""
    return container.identity.create_api_key(caller, body)


@router.get("/api-keys", tags=["api-keys"])
def list_api_keys(
    caller: ManagerPrincipal, page: PageDep, container: ContainerDep
) -> Page[ApiKeyPublic]:
    """The restaurant's POS keys (never the keys themselves)."""
    return container.identity.list_api_keys(caller, page)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, tags=["api-keys"])
def revoke_api_key(key_id: str, caller: ManagerPrincipal, container: ContainerDep) -> Response:
    """Revoke a POS key; it stops working at once."""
    container.identity.revoke_api_key(caller, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/tables", status_code=status.HTTP_201_CREATED, tags=["tables"])
def create_table(
    body: TableCreate, caller: ManagerPrincipal, container: ContainerDep
) -> TablePublic:
    """Add a dining table."""
    return container.identity.create_table(caller, body)


@router.get("/tables", tags=["tables"])
def list_tables(
    caller: CurrentPrincipal, page: PageDep, container: ContainerDep
) -> Page[TablePublic]:
    """The restaurant's dining tables."""
    return container.identity.list_tables(caller, page)
