"""Request and response models of the identity endpoints."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from coffeeshop.api.identity.roles import Role
from coffeeshop.commands.validation import Name


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


def _strong_enough(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("must not contain control characters")
    return value


Password = Annotated[str, Field(min_length=8, max_length=128), AfterValidator(_strong_enough)]
TimeZoneName = Annotated[str, Field(max_length=64), AfterValidator(_known_timezone)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignupCreate(Strict):
    restaurant_name: Name
    email: EmailStr = Field(max_length=254)
    password: Password
    timezone: TimeZoneName = "UTC"
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")


class SignupPublic(BaseModel):
    restaurant_id: str
    user_id: str


class TokenPublic(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int


class MePublic(BaseModel):
    user_id: str | None
    restaurant_id: str
    role: Role
    api_key_id: str | None = None


class UserCreate(Strict):
    email: EmailStr = Field(max_length=254)
    password: Password
    role: Literal[Role.MANAGER, Role.STAFF]


class UserPublic(BaseModel):
    id: str
    email: str
    role: Role
    is_active: bool
    created_at: datetime


class ApiKeyCreate(Strict):
    name: Name


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    prefix: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key itself. It is shown only once; store it on the device.")


class TableCreate(Strict):
    label: Annotated[Name, Field(max_length=50)]
    seats: int = Field(ge=1, le=100)


class TablePublic(BaseModel):
    id: str
    label: str
    seats: int
    created_at: datetime
