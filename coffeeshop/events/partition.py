"""Restaurants split into disjoint sets, so parallel workers can share the store without
sharing a restaurant (all of a restaurant's rows, in every read model, stay with one worker)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func


@dataclass(frozen=True, slots=True)
class Partition:
    """The restaurants whose id's CRC-32 is ``index`` modulo ``count``; the same function in
    SQL (``CRC32``, which SQLite gets from :func:`crc32`) and in Python."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"partition {self.index} of {self.count} does not exist")

    @classmethod
    def all(cls, count: int) -> list[Partition]:
        return [cls(index, count) for index in range(count)]

    @property
    def whole(self) -> bool:
        return self.count == 1

    def holds(self, restaurant_id: str) -> bool:
        return self.whole or crc32(restaurant_id) % self.count == self.index

    def clause(self, column: Any) -> Any:
        """A WHERE condition on a restaurant id column."""
        return func.crc32(column) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index + 1}/{self.count}"


WHOLE = Partition(0, 1)


def crc32(value: str) -> int:
    """MySQL's CRC32() of a string (its UTF-8 bytes)."""
    return zlib.crc32(value.encode())
