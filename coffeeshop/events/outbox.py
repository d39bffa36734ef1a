"""The outbox queue: rows written with each append, claimed and deleted by relays.

Claims use ``FOR UPDATE SKIP LOCKED`` so several relays share the queue without waiting on
one another; a row is deleted only after the caller has published it (at-least-once).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, select

from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.locking import lock_for_write
from coffeeshop.events.schema import outbox
from coffeeshop.events.store import EventStore


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    outbox_id: int
    event: RecordedEvent


def claim_batch(conn: Connection, store: EventStore, limit: int = 500) -> list[OutboxEntry]:
    """Lock up to ``limit`` unclaimed outbox rows with their events (caller's transaction)."""
    lock_for_write(conn)
    claimed = conn.execute(
        select(outbox.c.id, outbox.c.restaurant_id, outbox.c.seq)
        .order_by(outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not claimed:
        return []
    found = store.read_at(conn, [(row.restaurant_id, row.seq) for row in claimed])
    return [
        OutboxEntry(outbox_id=row.id, event=found[(row.restaurant_id, row.seq)]) for row in claimed
    ]


def delete_entries(conn: Connection, entries: list[OutboxEntry]) -> None:
    if entries:
        conn.execute(delete(outbox).where(outbox.c.id.in_([e.outbox_id for e in entries])))
