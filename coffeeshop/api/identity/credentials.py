"""Password hashing (argon2 via pwdlib), access tokens (PyJWT) and POS API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

import jwt
from pwdlib import PasswordHash

from coffeeshop.api.identity.roles import Role

JWT_ALGORITHM = "HS256"
API_KEY_PREFIX = "cs_"


class InvalidToken(Exception):
    """The bearer token is malformed, forged, expired or uses another algorithm."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: str
    restaurant_id: str
    role: Role


class PasswordHasher:
    def __init__(self) -> None:
        self._hash = PasswordHash.recommended()

    @cached_property
    def _dummy(self) -> str:
        """Verifying against this when the user does not exist keeps timing uniform. Made on
        first use (the API warms it at start-up): a hash costs 64 MB and tens of ms, which
        every other process that builds a container (replay jobs, CLI commands) never needs."""
        return self._hash.hash(secrets.token_urlsafe(16))

    def warm(self) -> None:
        self.verify("", None)

    def hash(self, password: str) -> str:
        return self._hash.hash(password)

    def verify(self, password: str, password_hash: str | None) -> bool:
        return (
            self._hash.verify(password, password_hash or self._dummy) and password_hash is not None
        )


class TokenIssuer:
    def __init__(self, secret: str, lifetime: timedelta) -> None:
        self._secret = secret
        self.lifetime = lifetime

    def issue(self, claims: TokenClaims, now: datetime) -> str:
        payload = {
            "sub": claims.user_id,
            "rid": claims.restaurant_id,
            "role": claims.role.value,
            "iat": int(now.timestamp()),
            "exp": int((now + self.lifetime).timestamp()),
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(payload, self._secret, algorithm=JWT_ALGORITHM)

    def decode(self, token: str) -> TokenClaims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[JWT_ALGORITHM],
                options={"require": ["exp", "iat", "sub", "rid", "role"]},
            )
            return TokenClaims(
                user_id=str(payload["sub"]),
                restaurant_id=str(payload["rid"]),
                role=Role(payload["role"]),
            )
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            raise InvalidToken(str(exc)) from exc


def new_api_key() -> str:
    """A random 256-bit key; only its hash is stored."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_hash(key: str) -> str:
    # API keys carry 256 bits of entropy, so a fast digest is safe (no dictionary to attack)
    # and keeps per-request authentication cheap, unlike a password hash.
    return hashlib.sha256(key.encode()).hexdigest()
