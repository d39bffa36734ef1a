"""Does a live projection equal a fresh rebuild from the event store? Row by row.

``verify`` rebuilds each projection into scratch tables, at first only up to the positions
the live projection had when it started (so the rebuild never runs ahead of live). Then,
one projection at a time, it freezes the live projection by locking all of its checkpoint
rows (every projector transaction locks its restaurant's checkpoint before touching a row,
so live writes for this projection wait, reads do not), brings the scratch copy to exactly
the frozen positions and compares both, table by table, in primary-key order. The freeze
lasts as long as the comparison: seconds for hundreds of thousands of rows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, Table, select

from coffeeshop.events.clock import Clock, naive_utc, utc_now
from coffeeshop.events.store import EventStore
from coffeeshop.projections import shadow, tracking
from coffeeshop.projections.base import Projection
from coffeeshop.projections.rebuild import VERIFY, Plan, Progress, Rebuilder, discard

log = logging.getLogger("coffeeshop.verify")

CHUNK = 2000
MAX_PENDING = 100_000  # unmatched rows held while comparing one table; beyond, stop counting
EXAMPLES = 5
MAX_RESTAURANTS = 20


@dataclass
class TableDrift:
    table: str
    compared: int = 0
    missing: int = 0  # in the rebuild, not in live
    unexpected: int = 0  # in live, not in the rebuild
    different: int = 0
    truncated: bool = False
    examples: list[str] = field(default_factory=list)
    restaurants: set[str] = field(default_factory=set)

    @property
    def rows(self) -> int:
        return self.missing + self.unexpected + self.different

    def note(self, row: dict[str, Any], example: str) -> None:
        if len(self.restaurants) < MAX_RESTAURANTS:
            self.restaurants.add(str(row["restaurant_id"]))
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)


@dataclass
class VerifyResult:
    projection: str
    tables: list[TableDrift]
    positions_differ: int = 0

    @property
    def drift_rows(self) -> int:
        return sum(table.rows for table in self.tables) + self.positions_differ

    @property
    def clean(self) -> bool:
        return self.drift_rows == 0

    @property
    def restaurants(self) -> list[str]:
        """Restaurants with drifting rows (up to a few dozen): candidates for
        ``coffeeshop replay NAME --restaurant ID``."""
        return sorted(set().union(*(table.restaurants for table in self.tables)))

    def summary(self) -> str:
        if self.clean:
            compared = sum(table.compared for table in self.tables)
            return f"{self.projection}: clean ({compared} rows compared)"
        lines = [f"{self.projection}: DRIFT in {self.drift_rows} rows"]
        if self.positions_differ:
            lines.append(f"  positions differ for {self.positions_differ} restaurants")
        for table in self.tables:
            if not table.rows:
                continue
            more = " (stopped counting)" if table.truncated else ""
            lines.append(
                f"  {table.table}: {table.missing} missing, {table.unexpected} unexpected, "
                f"{table.different} different of {table.compared} compared{more}"
            )
            lines.extend(f"    {example}" for example in table.examples)
        if self.restaurants:
            lines.append(f"  restaurants affected: {', '.join(self.restaurants)}")
        return "\n".join(lines)


class Verifier:
    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        clock: Clock = utc_now,
        *,
        batch_size: int = 5000,
        progress: Progress | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        kwargs: dict[str, Any] = {"batch_size": batch_size}
        if progress is not None:
            kwargs["progress"] = progress
        self._rebuilder = Rebuilder(engine, store, clock, **kwargs)

    def verify(self, projections: Sequence[Projection]) -> list[VerifyResult]:
        with self._engine.connect() as conn:
            snapshots = {p.name: tracking.all_checkpoints(conn, p.checkpoints) for p in projections}
        plans = [
            self._rebuilder.prepare(p, VERIFY, shadow.SCRATCH, fresh=True, limits=snapshots[p.name])
            for p in projections
        ]
        try:
            self._rebuilder.fill(plans)
            results = []
            for plan in plans:
                self._rebuilder.finish(plan)
                result = self._compare(plan)
                self._record(result)
                results.append(result)
            return results
        finally:
            discard(self._engine, projections, VERIFY, shadow.SCRATCH)

    def _compare(self, plan: Plan) -> VerifyResult:
        projection = plan.projection
        sqlite = self._engine.dialect.name == "sqlite"
        with self._engine.connect() as live, live.begin():
            frozen = tracking.lock_all_checkpoints(live, projection.checkpoints)
            plan.limits = frozen
            if sqlite:  # one writer: the scratch copy catches up in the freezing transaction
                with self._rebuilder.using(live):
                    self._rebuilder.finish(plan)
            else:
                self._rebuilder.finish(plan)
            applied = {rid: seq for rid, seq in frozen.items() if seq}
            with self._scratch_reader(live, sqlite) as scratch:
                tables = [
                    _diff(live, scratch, table, plan.targets[table], set(applied))
                    for table in projection.tables
                ]
            rebuilt = {rid: seq for rid, seq in plan.positions.items() if seq}
            positions_differ = len(set(applied.items()) ^ set(rebuilt.items()))
        result = VerifyResult(projection.name, tables, positions_differ=positions_differ)
        (log.info if result.clean else log.error)("%s", result.summary())
        return result

    @contextmanager
    def _scratch_reader(self, live: Connection, sqlite: bool) -> Iterator[Connection]:
        if sqlite:
            yield live
            return
        with self._engine.connect() as other:
            yield other

    def _record(self, result: VerifyResult) -> None:
        with self._engine.begin() as conn:
            tracking.record_verification(
                conn,
                tracking.Verification(
                    projection=result.projection,
                    verified_at=naive_utc(self._clock()),
                    drift_rows=result.drift_rows,
                    summary=result.summary()[:60_000],
                ),
            )


def _rows(conn: Connection, table: Table, restaurants: set[str]) -> Iterator[dict[str, Any]]:
    query = select(table).order_by(*table.primary_key.columns)
    result = conn.execute(query, execution_options={"stream_results": True, "yield_per": CHUNK})
    for row in result.mappings():
        if row["restaurant_id"] in restaurants:
            yield dict(row)


def _diff(
    live: Connection, scratch: Connection, table: Table, copy: Table, restaurants: set[str]
) -> TableDrift:
    """Walk both tables in primary-key order side by side. Rows are matched by key (not by
    position), so an extra or missing row costs one entry, not a misaligned tail. Only the
    frozen restaurants count: one whose first events arrive during the comparison has no
    checkpoint row to lock, so its rows may appear in live meanwhile."""
    drift = TableDrift(table.name)
    keys = [column.name for column in table.primary_key.columns]
    waiting_live: dict[tuple[Any, ...], dict[str, Any]] = {}
    waiting_rebuilt: dict[tuple[Any, ...], dict[str, Any]] = {}
    live_rows, rebuilt_rows = _rows(live, table, restaurants), _rows(scratch, copy, restaurants)
    live_done = rebuilt_done = False

    while not (live_done and rebuilt_done):
        for _ in range(CHUNK):
            row = None if live_done else next(live_rows, None)
            if row is None:
                live_done = True
            else:
                _match(drift, keys, row, waiting_live, waiting_rebuilt, live_side=True)
            row = None if rebuilt_done else next(rebuilt_rows, None)
            if row is None:
                rebuilt_done = True
            else:
                _match(drift, keys, row, waiting_rebuilt, waiting_live, live_side=False)
            if live_done and rebuilt_done:
                break
        if len(waiting_live) + len(waiting_rebuilt) > MAX_PENDING:
            drift.truncated = True
            break
    for key, row in waiting_live.items():
        drift.note(row, f"unexpected {_show(keys, key)}")
    for key, row in waiting_rebuilt.items():
        drift.note(row, f"missing {_show(keys, key)}")
    drift.unexpected += len(waiting_live)
    drift.missing += len(waiting_rebuilt)
    return drift


def _match(
    drift: TableDrift,
    keys: list[str],
    row: dict[str, Any],
    mine: dict[tuple[Any, ...], dict[str, Any]],
    theirs: dict[tuple[Any, ...], dict[str, Any]],
    *,
    live_side: bool,
) -> None:
    key = tuple(row[column] for column in keys)
    other = theirs.pop(key, None)
    if other is None:
        mine[key] = row
        return
    drift.compared += 1
    live_row, rebuilt_row = (row, other) if live_side else (other, row)
    if live_row != rebuilt_row:
        drift.different += 1
        columns = sorted(c for c in live_row if live_row.get(c) != rebuilt_row.get(c))
        shown = ", ".join(
            f"{c}: live={_short(live_row.get(c))} rebuilt={_short(rebuilt_row.get(c))}"
            for c in columns[:4]
        )
        drift.note(live_row, f"different {_show(keys, key)}: {shown}")


def _show(keys: list[str], key: tuple[Any, ...]) -> str:
    return ", ".join(f"{column}={value}" for column, value in zip(keys, key, strict=True))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
