"""Applies events to one projection exactly once in effect, in each restaurant's seq order.

Events delivered by the bus may be duplicated, lost or reordered. Per restaurant, the
projector locks its checkpoint, skips what is at or below it, fetches any missing seqs from
the event store, applies everything in seq order and advances the checkpoint, all in one
transaction. Catch-up does the same from the store alone, so the bus is only a fast path.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.exc import OperationalError

from coffeeshop.events.clock import Clock, naive_utc, utc_now
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.store import EventStore
from coffeeshop.projections import tracking
from coffeeshop.projections.base import CacheWriter, Projection
from coffeeshop.projections.metrics import EVENTS_PROJECTED
from coffeeshop.projections.rows import RowBuffer, Rows

log = logging.getLogger("coffeeshop.projector")


class ProjectionFailed(Exception):
    """A handler (or the write of its rows) failed: the projection stops rather than skip."""

    def __init__(self, projection: str, event: RecordedEvent | None, cause: BaseException) -> None:
        where = f" at {event.type} seq {event.seq} of {event.restaurant_id}" if event else ""
        super().__init__(f"projection {projection} failed{where}: {cause!r}")
        self.projection = projection
        self.event = event


class Projector:
    def __init__(
        self,
        projection: Projection,
        engine: Engine,
        store: EventStore,
        clock: Clock = utc_now,
        *,
        batch_size: int = 2000,
        targets: Mapping[Table, Table] | None = None,
        cache: CacheWriter | None = None,
    ) -> None:
        """``targets`` redirects the projection's tables (shadow or scratch copies); ``cache``
        receives the projection's announcements of live changes."""
        self.projection = projection
        self.name = projection.name
        self._engine = engine
        self._store = store
        self._clock = clock
        self.batch_size = batch_size
        self._targets = dict(targets or {})
        self._checkpoints = self._targets.get(projection.checkpoints, projection.checkpoints)
        self._cache = cache if projection.announce is not None and not self._targets else None

    def apply_batch(self, events: Sequence[RecordedEvent]) -> int:
        """Apply events delivered by the bus, in one transaction; returns how many applied.

        Checkpoints are locked in restaurant order, so consumers sharing a group never
        deadlock. A restaurant far behind (lost messages, a flushed Redis) is healed from
        the store in chunks afterwards instead.
        """
        by_restaurant: dict[str, list[RecordedEvent]] = defaultdict(list)
        for event in events:
            by_restaurant[event.restaurant_id].append(event)
        far_behind: list[tuple[str, int]] = []
        applied = 0
        with self._guard(), self._engine.begin() as conn:
            todo: list[tuple[str, list[RecordedEvent]]] = []
            for restaurant_id in sorted(by_restaurant):
                batch = sorted(by_restaurant[restaurant_id], key=lambda event: event.seq)
                up_to = batch[-1].seq
                checkpoint = self._lock(conn, restaurant_id)
                if up_to <= checkpoint:
                    continue  # duplicates only
                if up_to - checkpoint > self.batch_size + len(batch):
                    far_behind.append((restaurant_id, up_to))
                    continue
                todo.append(
                    (restaurant_id, self._in_order(conn, restaurant_id, batch, checkpoint, up_to))
                )
            if todo:
                self.apply_locked(conn, todo)
                applied = sum(len(ordered) for _, ordered in todo)
        for restaurant_id, up_to in far_behind:
            applied += self.catch_up_restaurant(restaurant_id, up_to)
        return applied

    def catch_up(self) -> int:
        """Apply whatever the store holds beyond this projection's checkpoints."""
        return catch_up_together([self], self._store)

    def positions(self) -> dict[str, int]:
        """Every restaurant's checkpoint."""
        with self._engine.connect() as conn:
            return tracking.all_checkpoints(conn, self._checkpoints)

    def apply_stored(self, restaurant_id: str, events: Sequence[RecordedEvent]) -> int:
        """Apply the part of ``events`` (consecutive seqs of one restaurant, read from the
        store) beyond the checkpoint; returns how many. A batch that starts beyond
        checkpoint + 1 applies nothing (its caller reads from the lowest checkpoint)."""
        with self._guard(), self._engine.begin() as conn:
            checkpoint = self._lock(conn, restaurant_id)
            todo = [event for event in events if event.seq > checkpoint]
            if not todo or todo[0].seq != checkpoint + 1:
                return 0
            self.apply_locked(conn, [(restaurant_id, todo)])
            return len(todo)

    def catch_up_restaurant(self, restaurant_id: str, up_to: int) -> int:
        with self._guard():
            return self._catch_up_restaurant(restaurant_id, up_to)

    def _catch_up_restaurant(self, restaurant_id: str, up_to: int) -> int:
        applied = 0
        while True:
            with self._engine.begin() as conn:
                checkpoint = self._lock(conn, restaurant_id)
                if checkpoint >= up_to:
                    return applied
                events = self._store.read_restaurant(
                    restaurant_id,
                    after_seq=checkpoint,
                    limit=self.batch_size,
                    up_to_seq=up_to,
                    conn=self._shared(conn),
                )
                if not events:
                    return applied
                self.apply_locked(conn, [(restaurant_id, events)])
                applied += len(events)

    # -- internals -------------------------------------------------------------------------

    def _in_order(
        self,
        conn: Connection,
        restaurant_id: str,
        batch: list[RecordedEvent],
        checkpoint: int,
        up_to: int,
    ) -> list[RecordedEvent]:
        """checkpoint+1 .. up_to in seq order, fetching from the store what was not delivered."""
        delivered = {event.seq: event for event in batch if event.seq > checkpoint}
        if len(delivered) < up_to - checkpoint:  # a hole: lost or reordered messages
            stored = self._store.read_restaurant(
                restaurant_id,
                after_seq=checkpoint,
                limit=up_to - checkpoint,
                up_to_seq=up_to,
                conn=self._shared(conn),
            )
            delivered = {event.seq: event for event in stored}
        return [delivered[seq] for seq in range(checkpoint + 1, up_to + 1)]

    def _shared(self, conn: Connection) -> Connection | None:
        """Read the store in our transaction when it lives in the same database (SQLite has
        a single writer: a second connection would wait on our own lock)."""
        return conn if self._store.engine is self._engine else None

    def _lock(self, conn: Connection, restaurant_id: str) -> int:
        return tracking.lock_checkpoint(
            conn, self._checkpoints, restaurant_id, naive_utc(self._clock())
        )

    def apply_locked(
        self, conn: Connection, work: Sequence[tuple[str, Sequence[RecordedEvent]]]
    ) -> None:
        """Apply each restaurant's events (in seq order, just after its checkpoint, which the
        caller holds locked) and advance the checkpoints, all in ``conn``'s transaction."""
        rows = RowBuffer(lambda: conn, self._targets)
        apply_events(self.projection, rows, [event for _, events in work for event in events])
        run_handler(self.name, None, rows.flush)
        now = naive_utc(self._clock())
        for restaurant_id, events in work:
            tracking.advance(conn, self._checkpoints, restaurant_id, events[-1].seq, now)
        self._announce(conn, work)
        EVENTS_PROJECTED.labels(self.name).inc(sum(len(events) for _, events in work))

    def _announce(
        self, conn: Connection, work: Sequence[tuple[str, Sequence[RecordedEvent]]]
    ) -> None:
        """Before the commit, so a reader that trusts the cache is never behind a committed
        change; one that hears early reads the tables, which still hold the last commit."""
        if self._cache is None or self.projection.announce is None:
            return
        handles = self.projection.handles
        changed = [rid for rid, events in work if any(handles(e.type) for e in events)]
        if changed:
            run_handler(self.name, None, self.projection.announce, conn, self._cache, changed)

    def _guard(self) -> _FailureRecorder:
        return _FailureRecorder(self)

    def mark(self, state: str, error: str | None = None) -> None:
        with self._engine.begin() as conn:
            tracking.set_state(conn, self.name, state, naive_utc(self._clock()), error)


OnError = Callable[["Projector", Exception], None]


def _raise(_projector: Projector, error: Exception) -> None:
    raise error


def catch_up_together(
    projectors: Sequence[Projector], store: EventStore, on_error: OnError = _raise
) -> int:
    """Bring several projections up to the store's heads, reading each restaurant's events
    once for all of them (reading was most of a catch-up's cost when each projection read
    its own copy); returns the events applied, summed over the projections.

    A projection that fails is left out of the rest of the pass after ``on_error`` has
    seen the error (the default raises it).
    """
    active: list[Projector] = []
    positions: dict[str, dict[str, int]] = {}
    for projector in projectors:
        try:
            positions[projector.name] = projector.positions()
            active.append(projector)
        except Exception as exc:
            on_error(projector, exc)
    applied = 0
    for restaurant_id, head in store.heads().items():
        behind = [p for p in active if positions[p.name].get(restaurant_id, 0) < head]
        after = min((positions[p.name].get(restaurant_id, 0) for p in behind), default=head)
        while behind and after < head:
            batch = max(p.batch_size for p in behind)
            events = store.read_restaurant(
                restaurant_id, after_seq=after, limit=batch, up_to_seq=head
            )
            if not events:
                break
            for projector in list(behind):
                try:
                    applied += projector.apply_stored(restaurant_id, events)
                except Exception as exc:
                    behind.remove(projector)
                    active.remove(projector)
                    on_error(projector, exc)
            after = events[-1].seq
    return applied


class _FailureRecorder:
    """Records a failure in projection_states (after the rollback) and lets it propagate."""

    def __init__(self, projector: Projector) -> None:
        self._projector = projector

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, _tb: object) -> None:
        if isinstance(error, ProjectionFailed):
            self._salvage(error.event)
            log.error("%s", error, exc_info=error)
            self._projector.mark("failed", str(error)[:2000])

    def _salvage(self, poison: RecordedEvent | None) -> None:
        """Apply the restaurant's events before the failing one (the failed transaction took
        them down with it), so the projection stops exactly at the poison event."""
        if poison is None or poison.seq <= 1:
            return
        try:
            self._projector._catch_up_restaurant(poison.restaurant_id, poison.seq - 1)
        except Exception:
            log.warning("could not apply the events before %s", poison.event_id, exc_info=True)


def run_handler(projection: str, event: RecordedEvent | None, work: Any, *args: Any) -> None:
    """Run projection code; its failure stops the projection (ProjectionFailed), except a
    transient database error (deadlock, lock timeout, lost connection, SQLite busy), which
    is raised as is: the transaction rolls back and the same events are tried again."""
    try:
        work(*args)
    except OperationalError:
        raise
    except Exception as exc:
        raise ProjectionFailed(projection, event, exc) from exc


def apply_events(projection: Projection, rows: Rows, events: Sequence[RecordedEvent]) -> None:
    """Prefetch, then run each event's handler in order: what live, rebuild and verify share."""
    run_handler(projection.name, None, projection.prefetch, rows, events)
    for event in events:
        run_handler(projection.name, event, projection.apply, rows, event)
