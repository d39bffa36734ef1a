"""Idempotency keys: an append claims its key in its own transaction, and a key a committed
request holds answers with the response recorded with it. Keys are kept 24 hours."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from coffeeshop.events.clock import as_utc
from coffeeshop.events.envelope import AppendResult, StoredResponse
from coffeeshop.events.errors import IdempotencyKeyReused
from coffeeshop.events.schema import idempotency_keys

IDEMPOTENCY_TTL = timedelta(hours=24)


class IdempotencyClaim:
    """Ties an append to an idempotency key; ``respond`` builds the response to record."""

    def __init__(
        self,
        key: str,
        request_hash: str,
        respond: Callable[[AppendResult], StoredResponse],
    ) -> None:
        self.key = key
        self.request_hash = request_hash
        self.respond = respond


class KeyTaken(Exception):
    """A committed request recorded the same idempotency key first."""

    def __init__(self, row: Row[Any]) -> None:
        super().__init__(row.idempotency_key)
        self.row = row


_NEW_KEY = insert(idempotency_keys)  # built once: its cache key is memoised


def claim_key(
    conn: Connection, restaurant_id: str, key: str, recorded: dict[str, Any], now: datetime
) -> None:
    """Record ``key`` with the response the append will give (``recorded``), in the caller's
    transaction; raise KeyTaken with the row of the committed request that holds it. An
    expired key is taken over, as if it had been purged."""
    row_values = {"restaurant_id": restaurant_id, "idempotency_key": key, **recorded}
    try:
        conn.execute(_NEW_KEY, row_values)
        return
    except IntegrityError:
        pass  # only the statement failed; the transaction goes on: whose is the key?
    which = (idempotency_keys.c.restaurant_id == restaurant_id) & (
        idempotency_keys.c.idempotency_key == key
    )
    row = conn.execute(select(idempotency_keys).where(which)).first()
    if row is None:  # purged in between: the key is free again
        conn.execute(_NEW_KEY, row_values)
    elif as_utc(row.created_at) < now - IDEMPOTENCY_TTL:
        conn.execute(update(idempotency_keys).where(which).values(**recorded))
    else:
        raise KeyTaken(row)


def replay(row: Row[Any], key: str, request_hash: str) -> AppendResult:
    """The response recorded in an ``idempotency_keys`` row; another request's raises."""
    if row.request_hash != request_hash:
        raise IdempotencyKeyReused(key)
    body: dict[str, Any] = row.response
    return AppendResult(
        stream_id=row.stream_id,
        version=int(body.get("version", 0)),
        position=int(body.get("position", 0)),
        response=StoredResponse(status_code=row.status_code, body=body),
        replayed=True,
    )
