"""Signup, tokens and the caller's own identity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.security import OAuth2PasswordRequestForm

from coffeeshop.api.deps import ContainerDep, CurrentPrincipal, limit_anonymous
from coffeeshop.api.errors import ResourceNotFound, Unauthorized
from coffeeshop.api.identity.credentials import TokenClaims
from coffeeshop.api.identity.schemas import MePublic, SignupCreate, SignupPublic, TokenPublic

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    response_model=SignupPublic,
    dependencies=[Depends(limit_anonymous)],
)
def signup(body: SignupCreate, container: ContainerDep) -> SignupPublic:
    """Create a restaurant and its owner account."""
    if not container.settings.signup_enabled:
        raise ResourceNotFound("Signup is disabled on this server")
    return container.identity.signup(body)


@router.post("/auth/token", response_model=TokenPublic, dependencies=[Depends(limit_anonymous)])
def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], container: ContainerDep
) -> TokenPublic:
    """Exchange an email and password for a bearer token (OAuth2 password flow)."""
    principal = container.identity.authenticate(form.username, form.password)
    if principal is None or principal.user_id is None:
        raise Unauthorized("Incorrect email or password")
    claims = TokenClaims(
        user_id=principal.user_id, restaurant_id=principal.restaurant_id, role=principal.role
    )
    token = container.tokens.issue(claims, container.clock())
    return TokenPublic(
        access_token=token, expires_in=int(container.tokens.lifetime.total_seconds())
    )


@router.get("/me", response_model=MePublic)
def me(principal: CurrentPrincipal) -> MePublic:
    """Who the credentials belong to: restaurant, role and user (or POS key)."""
    return MePublic(
        user_id=principal.user_id,
        restaurant_id=principal.restaurant_id,
        role=principal.role,
        api_key_id=principal.api_key_id,
    )
