"""Who is calling: the restaurant every read and write is scoped to, the role and the actor."""

from __future__ import annotations

from dataclasses import dataclass

from coffeeshop.api.identity.roles import Role


@dataclass(frozen=True, slots=True)
class Principal:
    restaurant_id: str
    role: Role
    user_id: str | None = None
    api_key_id: str | None = None

    @property
    def actor(self) -> str:
        """Recorded in event metadata: who issued the command."""
        return f"user:{self.user_id}" if self.user_id else f"api_key:{self.api_key_id}"
