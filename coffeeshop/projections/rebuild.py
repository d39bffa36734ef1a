"""Rebuild projections from the event store: into shadow tables (replay), or in place for one
restaurant, with the projections' own handlers (the ones the live projector runs).

A rebuild reads the whole store once, in keyset batches on ``events.id``, and feeds every
chosen projection. Each projection applies each restaurant's events in seq order (within a
restaurant ``id`` order is seq order; an event committed late, behind the keyset, shows up
as a gap in seqs and is fetched by seq, exactly as the live projector heals). Rows go
through a :class:`RowBuffer` that keeps recently used rows between batches, so an order's
life becomes one INSERT of its final row instead of a statement per event. After each batch
the shadow's rows, its checkpoints and the rebuild's position commit together: a rebuild
killed at any moment resumes from its last batch, and a shadow is never swapped in half built.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, Table, delete

from coffeeshop.events.clock import Clock, naive_utc, utc_now
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.locking import lock_for_write
from coffeeshop.events.store import EventStore
from coffeeshop.projections import shadow, tracking
from coffeeshop.projections.base import Projection
from coffeeshop.projections.projector import Projector, apply_events, run_handler
from coffeeshop.projections.rows import RowBuffer

log = logging.getLogger("coffeeshop.rebuild")

DEFAULT_BATCH = 5000
ROWS_KEPT = 10_000  # rows a projection keeps between batches (bounds memory, not correctness)
REPLAY, VERIFY = "replay", "verify"

Progress = Callable[[int, int], None]
"""(events read so far, events in the store) -> None; called after every batch."""


def _quiet(_done: int, _total: int) -> None:
    return None


@dataclass
class Plan:
    """One projection being rebuilt into copies of its tables."""

    projection: Projection
    purpose: str
    suffix: str
    targets: dict[Table, Table]
    positions: dict[str, int] = field(default_factory=dict)  # restaurant -> seq applied
    position: int = 0  # the last events.id read by the keyset pass
    applied: int = 0
    limits: Mapping[str, int] | None = None  # verify: apply no further than these seqs
    rows: RowBuffer | None = None

    @property
    def name(self) -> str:
        return self.projection.name

    @property
    def copy_names(self) -> list[str]:
        return [shadow.copy_name(table, self.suffix) for table in self.projection.all_tables]

    def limit_of(self, restaurant_id: str) -> int | None:
        return None if self.limits is None else self.limits.get(restaurant_id, 0)


@dataclass(frozen=True)
class ReplayResult:
    projection: str
    events: int
    seconds: float
    resumed_from: int


class Rebuilder:
    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        clock: Clock = utc_now,
        *,
        batch_size: int = DEFAULT_BATCH,
        rows_kept: int = ROWS_KEPT,
        progress: Progress = _quiet,
    ) -> None:
        self._engine = engine
        self._store = store
        self._clock = clock
        self._batch_size = batch_size
        self._rows_kept = rows_kept
        self._progress = progress
        self._conn: Connection | None = None
        self._outer: Connection | None = None

    # -- replay ------------------------------------------------------------------------------

    def replay(
        self, projections: Sequence[Projection], restart: bool = False
    ) -> list[ReplayResult]:
        """Rebuild into shadow tables, swap them in, then catch up what arrived meanwhile.

        Resumes an interrupted replay of the same projection unless ``restart``.
        """
        started = time.monotonic()
        plans = [self.prepare(p, REPLAY, shadow.NEXT, fresh=restart) for p in projections]
        resumed = {plan.name: plan.applied for plan in plans}
        self.fill(plans)
        results = []
        for plan in plans:
            self.finish(plan)
            shadow.swap(self._engine, [t.name for t in plan.projection.all_tables], plan.suffix)
            with self._engine.begin() as conn:
                tracking.finish_rebuild(conn, plan.name, plan.purpose)
            log.info("projection %s rebuilt and swapped in", plan.name)
            self._catch_up_live(plan.projection)
            results.append(
                ReplayResult(
                    projection=plan.name,
                    events=plan.applied - resumed[plan.name],
                    seconds=time.monotonic() - started,
                    resumed_from=resumed[plan.name],
                )
            )
        return results

    def replay_restaurant(self, projection: Projection, restaurant_id: str) -> int:
        """Rebuild one restaurant's rows in place, in one transaction: readers see the old rows
        until it commits, the live projector waits for this restaurant only."""
        checkpoints = projection.checkpoints
        applied = 0
        with self._engine.begin() as conn:
            tracking.lock_checkpoint(conn, checkpoints, restaurant_id, self._now())
            for table in projection.tables:
                conn.execute(delete(table).where(table.c.restaurant_id == restaurant_id))
            rows = RowBuffer(lambda: conn, capacity=self._rows_kept)
            seq = 0
            while True:
                events = self._store.read_restaurant(
                    restaurant_id, after_seq=seq, limit=self._batch_size, conn=self._shared(conn)
                )
                if not events:
                    break
                apply_events(projection, rows, events)
                run_handler(projection.name, None, rows.flush)
                seq = events[-1].seq
                applied += len(events)
            tracking.advance(conn, checkpoints, restaurant_id, seq, self._now())
        self._catch_up_live(projection, restaurant_id)
        return applied

    # -- the machinery shared with verify -----------------------------------------------------

    def prepare(
        self,
        projection: Projection,
        purpose: str,
        suffix: str,
        *,
        fresh: bool,
        limits: Mapping[str, int] | None = None,
    ) -> Plan:
        """A plan over copies of the projection's tables: resumed if a previous run of the same
        purpose left consistent copies behind (and ``fresh`` is false), else empty new ones."""
        targets = {table: shadow.dml_copy(table, suffix) for table in projection.all_tables}
        plan = Plan(projection, purpose, suffix, targets, limits=limits)
        plan.rows = RowBuffer(self._connection, targets, capacity=self._rows_kept)
        total = self._total()
        with self._engine.begin() as conn:
            progress = tracking.rebuild_of(conn, projection.name, purpose)
            complete = all(shadow.exists(conn, name) for name in plan.copy_names)
            if progress is not None and complete and not fresh:
                plan.position, plan.applied = progress.position, progress.applied
                plan.positions = tracking.all_checkpoints(conn, targets[projection.checkpoints])
                log.info(
                    "resuming the %s of %s after event id %d",
                    purpose,
                    projection.name,
                    plan.position,
                )
                return plan
        plan.rows = RowBuffer(self._connection, targets, capacity=self._rows_kept, fresh=True)
        with self._engine.begin() as conn:
            shadow.drop(conn, plan.copy_names)
            for table in projection.all_tables:
                shadow.create_copy(conn, table.name, shadow.copy_name(table, suffix))
            tracking.start_rebuild(conn, projection.name, purpose, total, self._now())
        return plan

    def fill(self, plans: Sequence[Plan]) -> None:
        """The keyset pass: every event after the plans' positions, in batches."""
        if not plans:
            return
        after = min(plan.position for plan in plans)
        total = self._total()
        done = min(plan.applied for plan in plans)
        self._progress(done, max(total, done))
        while True:
            events = self._store.read_all(after_id=after, limit=self._batch_size)
            if not events:
                break
            for plan in plans:
                if events[-1].id > plan.position:
                    self._feed(plan, events, total)
            after = events[-1].id
            done += len(events)
            self._progress(done, max(total, done))
            if len(events) < self._batch_size:
                break

    def finish(self, plan: Plan) -> None:
        """Bring the copy to the store heads (or to the plan's limits), by restaurant: picks up
        events committed behind the keyset pass and those appended since."""
        heads = self._store.heads()
        targets = heads if plan.limits is None else plan.limits
        for restaurant_id, target in sorted(targets.items()):
            while plan.positions.get(restaurant_id, 0) < target:
                events = self._store.read_restaurant(
                    restaurant_id,
                    after_seq=plan.positions.get(restaurant_id, 0),
                    limit=self._batch_size,
                    up_to_seq=target,
                )
                if not events:
                    break
                self._feed(plan, events, None)

    def _feed(self, plan: Plan, events: Sequence[RecordedEvent], total: int | None) -> None:
        assert plan.rows is not None
        with self._transaction() as conn:
            lock_for_write(conn)
            self._conn = conn
            try:
                work, touched = self._ordered(plan, events)
                if work:
                    apply_events(plan.projection, plan.rows, work)
                now = self._now()
                checkpoints = plan.projection.checkpoints
                for restaurant_id in touched:
                    _set_position(plan.rows, checkpoints, restaurant_id, plan, now)
                run_handler(plan.name, None, plan.rows.flush)
                if total is not None:  # the keyset pass (not a per-restaurant catch-up)
                    plan.position = max(plan.position, events[-1].id)
                    plan.applied += len(events)
                tracking.record_rebuild(
                    conn,
                    plan.name,
                    plan.purpose,
                    position=plan.position,
                    applied=plan.applied,
                    total=total if total is not None else max(plan.applied, self._total()),
                    now=now,
                )
            except BaseException:
                plan.rows.clear()  # what it holds was never committed
                raise
            finally:
                self._conn = None

    def _ordered(
        self, plan: Plan, events: Sequence[RecordedEvent]
    ) -> tuple[list[RecordedEvent], set[str]]:
        """The events to apply, in each restaurant's seq order, with any gap filled from the
        store; updates the plan's in-memory positions."""
        work: list[RecordedEvent] = []
        touched: set[str] = set()
        for event in events:
            restaurant_id = event.restaurant_id
            position = plan.positions.get(restaurant_id, 0)
            limit = plan.limit_of(restaurant_id)
            if event.seq <= position or (limit is not None and event.seq > limit):
                continue
            if event.seq > position + 1:
                missing = self._store.read_restaurant(
                    restaurant_id,
                    after_seq=position,
                    limit=event.seq - 1 - position,
                    up_to_seq=event.seq - 1,
                )
                if len(missing) != event.seq - 1 - position:
                    raise RuntimeError(
                        f"restaurant {restaurant_id}: seqs {position + 1}..{event.seq - 1} "
                        "are not in the store"
                    )
                work.extend(missing)
            work.append(event)
            plan.positions[restaurant_id] = event.seq
            touched.add(restaurant_id)
        return work, touched

    def _catch_up_live(self, projection: Projection, restaurant_id: str | None = None) -> None:
        projector = Projector(projection, self._engine, self._store, self._clock)
        if restaurant_id is None:
            projector.catch_up()
        else:
            projector.catch_up_restaurant(restaurant_id, self._store.head(restaurant_id))

    @contextmanager
    def using(self, conn: Connection) -> Iterator[None]:
        """Run batches in ``conn``'s open transaction instead of one transaction each (SQLite
        has one writer: a caller holding the write lock cannot wait for another connection)."""
        self._outer = conn
        try:
            yield
        finally:
            self._outer = None

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        if self._outer is not None:
            yield self._outer
            return
        with self._engine.begin() as conn:
            yield conn

    def _connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("rows are only reachable inside a rebuild batch")
        return self._conn

    def _shared(self, conn: Connection) -> Connection | None:
        return conn if self._store.engine is self._engine else None

    def _total(self) -> int:
        return sum(self._store.heads().values())

    def _now(self) -> datetime:
        return naive_utc(self._clock())


def _set_position(
    rows: RowBuffer, checkpoints: Table, restaurant_id: str, plan: Plan, now: datetime
) -> None:
    seq = plan.positions[restaurant_id]
    if rows.get(checkpoints, restaurant_id=restaurant_id) is None:
        rows.insert(checkpoints, {"restaurant_id": restaurant_id, "seq": seq, "updated_at": now})
    else:
        rows.update(checkpoints, {"restaurant_id": restaurant_id}, seq=seq, updated_at=now)


def discard(engine: Engine, projections: Iterable[Projection], purpose: str, suffix: str) -> None:
    """Drop the copies and progress of an unfinished rebuild."""
    with engine.begin() as conn:
        for projection in projections:
            shadow.drop(conn, [shadow.copy_name(t, suffix) for t in projection.all_tables])
            tracking.finish_rebuild(conn, projection.name, purpose)
