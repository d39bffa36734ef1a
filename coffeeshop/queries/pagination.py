"""The pagination envelope of every list, with offset pages and opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

T = TypeVar("T")
MAX_LIMIT = 50
DEFAULT_LIMIT = 20


class InvalidCursor(ValueError):
    """The cursor was not produced by this service (or was tampered with)."""


@dataclass(frozen=True, slots=True)
class PageRequest:
    skip: int = 0
    limit: int = DEFAULT_LIMIT
    cursor: list[Any] | None = None  # the decoded keyset position to continue after


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int | None
    skip: int
    limit: int
    has_more: bool
    next_cursor: str | None


def encode_cursor(key: list[Any]) -> str:
    raw = json.dumps(key, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if not isinstance(key, list) or not key:
        raise InvalidCursor("cursor is not valid")
    return key


def build_page(
    rows: list[T],
    request: PageRequest,
    total: int | None,
    key_of: Any,
) -> Page[T]:
    """``rows`` holds up to ``limit + 1`` rows: the extra one only tells whether more exist."""
    has_more = len(rows) > request.limit
    items = rows[: request.limit]
    next_cursor = encode_cursor(key_of(items[-1])) if has_more and items else None
    return Page[T](
        items=items,
        total=total,
        skip=request.skip,
        limit=request.limit,
        has_more=has_more,
        next_cursor=next_cursor,
    )
