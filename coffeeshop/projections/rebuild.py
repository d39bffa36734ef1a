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

import gc
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
from coffeeshop.events.partition import WHOLE, Partition
from coffeeshop.events.store import EventStore
from coffeeshop.projections import shadow, tracking
from coffeeshop.projections.base import CacheWriter, Projection
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
    part: Partition = WHOLE  # the restaurants this plan's keyset pass reads

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
        cache: CacheWriter | None = None,
    ) -> None:
        """``cache`` hears what the catch-up on the live tables after a swap changes."""
        self._engine = engine
        self._store = store
        self._clock = clock
        self._batch_size = batch_size
        self._rows_kept = rows_kept
        self._progress = progress
        self._cache = cache
        self._conn: Connection | None = None
        self._outer: Connection | None = None

    # -- replay ------------------------------------------------------------------------------

    def replay(
        self, projections: Sequence[Projection], restart: bool = False
    ) -> list[ReplayResult]:
        """Rebuild into shadow tables, swap them in, then catch up what arrived meanwhile.

        Resumes an interrupted replay of the same projection unless ``restart``. This is
        :meth:`begin`, :meth:`fill_part` and :meth:`complete` in one process; a parallel
        replay runs the parts in separate processes between the other two.
        """
        started = time.monotonic()
        resumed = self.begin(projections, restart=restart)
        self.fill_part(projections, WHOLE)
        return self.complete(projections, resumed, started)

    def begin(
        self,
        projections: Sequence[Projection],
        *,
        restart: bool = False,
        parts: Sequence[Partition] = (WHOLE,),
    ) -> dict[str, int]:
        """Create (or keep, to resume) the shadow tables and a progress row per part;
        returns the events each projection had applied before (0 when starting afresh)."""
        return {
            projection.name: self.prepare(
                projection, REPLAY, shadow.NEXT, fresh=restart, parts=parts
            ).applied
            for projection in projections
        }

    def fill_part(
        self,
        projections: Sequence[Projection],
        part: Partition,
        progress: Progress | None = None,
    ) -> None:
        """The keyset pass over one part's restaurants, into shadow tables :meth:`begin` made
        (several parts may run at once: they never share a restaurant, hence a row)."""
        with self._engine.connect() as conn:
            plans = [self._plan(conn, p, REPLAY, shadow.NEXT, part=part) for p in projections]
        self.fill(plans, progress)

    def complete(
        self, projections: Sequence[Projection], resumed: Mapping[str, int], started: float
    ) -> list[ReplayResult]:
        """After every part's pass: bring each shadow to the store heads, swap it in, and
        let the live projection catch up what was appended meanwhile."""
        results = []
        for projection in projections:
            with self._engine.connect() as conn:
                plan = self._plan(conn, projection, REPLAY, shadow.NEXT)
            self.finish(plan)
            with self._engine.begin() as conn:
                for table in projection.all_tables:
                    shadow.restore_indexes(conn, table.name, shadow.copy_name(table, plan.suffix))
            shadow.swap(self._engine, [t.name for t in projection.all_tables], plan.suffix)
            with self._engine.begin() as conn:
                tracking.finish_rebuild(conn, plan.name, plan.purpose)
            log.info("projection %s rebuilt and swapped in", plan.name)
            self._catch_up_live(projection)
            results.append(
                ReplayResult(
                    projection=plan.name,
                    events=plan.applied - resumed.get(plan.name, 0),
                    seconds=time.monotonic() - started,
                    resumed_from=resumed.get(plan.name, 0),
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
        parts: Sequence[Partition] = (WHOLE,),
    ) -> Plan:
        """A plan over copies of the projection's tables: resumed if a previous run of the same
        purpose left consistent copies behind (and ``fresh`` is false), else empty new ones.
        Progress is kept per part; a run split differently from the interrupted one resumes
        every part from the slowest old part's position."""
        totals = self._totals(parts)
        copies = [shadow.copy_name(table, suffix) for table in projection.all_tables]
        with self._engine.begin() as conn:
            before = tracking.rebuild_parts(conn, projection.name, purpose)
            complete = all(shadow.exists(conn, name) for name in copies)
            if before and complete and not fresh:
                position = min(part.position for part in before)
                if {part.part for part in before} != set(totals):
                    tracking.start_rebuild(
                        conn, projection.name, purpose, totals, self._now(), position=position
                    )
                log.info(
                    "resuming the %s of %s after event id %d", purpose, projection.name, position
                )
                return self._plan(conn, projection, purpose, suffix, limits=limits)
        with self._engine.begin() as conn:
            shadow.drop(conn, copies)
            for table in projection.all_tables:
                shadow.create_copy(conn, table.name, shadow.copy_name(table, suffix))
            tracking.start_rebuild(conn, projection.name, purpose, totals, self._now())
        with self._engine.connect() as conn:
            return self._plan(conn, projection, purpose, suffix, limits=limits)

    def _plan(
        self,
        conn: Connection,
        projection: Projection,
        purpose: str,
        suffix: str,
        *,
        part: Partition = WHOLE,
        limits: Mapping[str, int] | None = None,
    ) -> Plan:
        """A plan for ``part`` of a prepared rebuild, from what its copies and progress rows
        hold. Its rows start *fresh* (absent unless written by this plan, no lookups) when
        none of its restaurants has a position yet: every batch writes a restaurant's rows
        and its position together, so no position means no rows."""
        targets = {table: shadow.dml_copy(table, suffix) for table in projection.all_tables}
        positions = {
            restaurant: seq
            for restaurant, seq in tracking.all_checkpoints(
                conn, targets[projection.checkpoints]
            ).items()
            if part.holds(restaurant)
        }
        progress = tracking.rebuild_parts(conn, projection.name, purpose)
        mine = [p for p in progress if part.whole or p.part == str(part)]
        plan = Plan(
            projection,
            purpose,
            suffix,
            targets,
            positions=positions,
            position=min((p.position for p in mine), default=0),
            applied=sum(p.applied for p in mine),
            limits=limits,
            part=part,
        )
        plan.rows = RowBuffer(
            self._connection, targets, capacity=self._rows_kept, fresh=not positions
        )
        return plan

    def fill(self, plans: Sequence[Plan], progress: Progress | None = None) -> None:
        """The keyset pass: every event of the plans' part after the plans' positions."""
        if not plans:
            return
        report = progress or self._progress
        part = plans[0].part
        if any(plan.part != part for plan in plans):
            raise ValueError("one keyset pass reads one part")
        after = min(plan.position for plan in plans)
        total = self._totals([part])[str(part)]
        done = min(plan.applied for plan in plans)
        report(done, max(total, done))
        with _collector_paused() as batch_done:
            while True:
                events = self._store.read_all(after, self._batch_size, part)
                if not events:
                    break
                for plan in plans:
                    if events[-1].id > plan.position:
                        self._feed(plan, events, total)
                after = events[-1].id
                done += len(events)
                report(done, max(total, done))
                batch_done()
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
                    str(plan.part),
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
        projector = Projector(projection, self._engine, self._store, self._clock, cache=self._cache)
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

    def _totals(self, parts: Sequence[Partition]) -> dict[str, int]:
        """Events each part will read (the sum of its restaurants' heads)."""
        totals = dict.fromkeys(map(str, parts), 0)
        for restaurant, head in self._store.heads().items():
            for part in parts:
                if part.holds(restaurant):
                    totals[str(part)] += head
        return totals

    def _now(self) -> datetime:
        return naive_utc(self._clock())


@contextmanager
def _collector_paused(every: int = 10) -> Iterator[Callable[[], None]]:
    """Run the cyclic garbage collector every ``every`` batches instead of on its own.

    A batch allocates millions of short-lived dicts and rows, none of them in a cycle; left
    to itself the collector scanned them again and again, a third of a replay's CPU. Yields
    the function to call after each batch."""
    enabled = gc.isenabled()
    gc.disable()
    batches = 0

    def batch_done() -> None:
        nonlocal batches
        batches += 1
        if batches % every == 0:
            gc.collect(1)

    try:
        yield batch_done
    finally:
        if enabled:
            gc.enable()


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
