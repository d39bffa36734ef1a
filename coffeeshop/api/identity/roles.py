"""Roles, strongest first: owner > manager > staff > pos."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    OWNER = "owner"
    MANAGER = "manager"
    STAFF = "staff"
    POS = "pos"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def at_least(self, other: Role) -> bool:
        return self.rank >= other.rank


_RANK = {Role.POS: 0, Role.STAFF: 1, Role.MANAGER: 2, Role.OWNER: 3}
