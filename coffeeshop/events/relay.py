"""The relay: publishes outbox rows to the bus and deletes them once the bus accepted them.

Claims use SKIP LOCKED, so several relays share the outbox; a crash between publish and
delete republishes (at-least-once), which projectors absorb as duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import Connection, Engine, RootTransaction

from coffeeshop.events.bus import EventPublisher
from coffeeshop.events.outbox import OutboxEntry, claim_batch, delete_entries
from coffeeshop.events.store import EventStore

log = logging.getLogger("coffeeshop.relay")


class Relay:
    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        publisher: EventPublisher,
        batch_size: int = 500,
        idle_interval_s: float = 0.01,
    ) -> None:
        self._engine = engine
        self._store = store
        self._publisher = publisher
        self._batch_size = batch_size
        self._idle_interval_s = idle_interval_s
        self._wake = asyncio.Event()
        self.published = 0

    def wake(self) -> None:
        """Called (thread-safely, through the loop) after an append commits."""
        self._wake.set()

    async def relay_once(self) -> int:
        """Publish one batch; returns how many events went out."""
        if self._engine.dialect.name == "sqlite":
            count = await self._relay_unlocked()
        else:
            count = await self._relay_locked()
        self.published += count
        return count

    async def _relay_locked(self) -> int:
        """Keep the claimed rows locked while publishing, so other relays skip them.

        Two trips to the thread pool per batch (claim, then delete and commit) and one per
        empty poll: an idle relay polls a hundred times a second."""
        claimed = await asyncio.to_thread(self._claim_locked)
        if claimed is None:
            return 0
        conn, transaction, entries = claimed
        try:
            await self._publisher.publish([entry.event for entry in entries])
        except BaseException:
            await asyncio.to_thread(conn.close)  # rolls back: the rows go out again later
            raise
        await asyncio.to_thread(self._delete_and_commit, conn, transaction, entries)
        return len(entries)

    def _claim_locked(self) -> tuple[Connection, RootTransaction, list[OutboxEntry]] | None:
        conn = self._engine.connect()
        try:
            transaction = conn.begin()
            entries = claim_batch(conn, self._store, self._batch_size)
            if entries:
                return conn, transaction, entries
            transaction.rollback()
        except BaseException:
            conn.close()
            raise
        conn.close()
        return None

    @staticmethod
    def _delete_and_commit(
        conn: Connection, transaction: RootTransaction, entries: list[OutboxEntry]
    ) -> None:
        try:
            delete_entries(conn, entries)
            transaction.commit()
        finally:
            conn.close()

    async def _relay_unlocked(self) -> int:
        """SQLite has one write lock for the whole file: holding it while in-process
        subscribers write would deadlock them. Claim, release, publish, then delete."""
        entries = await asyncio.to_thread(self._claim_and_release)
        if entries:
            await self._publisher.publish([entry.event for entry in entries])
            await asyncio.to_thread(self._delete, entries)
        return len(entries)

    def _claim_and_release(self) -> list[OutboxEntry]:
        with self._engine.begin() as conn:
            return claim_batch(conn, self._store, self._batch_size)

    def _delete(self, entries: list[OutboxEntry]) -> None:
        with self._engine.begin() as conn:
            delete_entries(conn, entries)

    async def run(self, stop: asyncio.Event) -> None:
        """Drain the outbox until ``stop`` is set; failures are logged and retried."""
        while not stop.is_set():
            self._wake.clear()
            try:
                if await self.relay_once():
                    continue
            except Exception:
                log.exception("relay batch failed; retrying")
                await asyncio.sleep(1)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._idle_interval_s)
