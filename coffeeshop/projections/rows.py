"""The only way projection handlers touch their tables: keyed reads and writes, buffered.

Handlers call ``get``/``insert``/``update``/``delete``/``add`` on rows identified by their
primary key. A :class:`RowBuffer` answers reads from what it already holds (loading a row
from the database once), collects the writes, and ``flush`` turns them into a few bulk
statements in the caller's transaction: one DELETE, one multi-row INSERT and one multi-row
upsert per table. A row inserted and deleted within one buffer costs nothing at all.

Because handlers never name a database table, the same handlers serve the live projector
(tables as they are), a rebuild (shadow tables, swapped in at the end) and ``verify``
(scratch tables): the buffer's ``targets`` map each table to the one actually written.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Protocol

from sqlalchemy import JSON, Connection, Table, bindparam, delete, insert, select, tuple_
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.sql.dml import Insert

from coffeeshop.events import jsonio
from coffeeshop.projections import bulkload

Row = Mapping[str, Any]
Key = tuple[Any, ...]


class Rows(Protocol):
    """What a handler may do to its projection's rows (keys are primary-key column values)."""

    def get(self, table: Table, **key: Any) -> Row | None: ...

    def insert(self, table: Table, row: Mapping[str, Any]) -> None: ...

    def update(self, table: Table, key: Mapping[str, Any], **values: Any) -> Row: ...

    def delete(self, table: Table, **key: Any) -> None: ...

    def prefetch(self, table: Table, keys: Iterable[Mapping[str, Any]]) -> None: ...

    def add(
        self,
        table: Table,
        key: Mapping[str, Any],
        zeros: Mapping[str, Any],
        deltas: Mapping[str, int],
        values: Mapping[str, Any] | None = None,
    ) -> None: ...


class DuplicateRow(LookupError):
    """An insert for a key that already holds a row: the read model is inconsistent."""


class MissingRow(LookupError):
    """An update of a row that does not exist: the read model is inconsistent."""


# What the database holds for a key, as far as the buffer knows.
_ABSENT, _PRESENT, _UNKNOWN = 0, 1, 2
FORGET_LIMIT = 2_000_000  # evicted keys remembered in fresh mode before falling back to reads


@dataclass(slots=True)
class _Entry:
    row: dict[str, Any] | None
    stored: int


class _TableState:
    """One table's rows in the buffer, and what it takes to read and write them."""

    __slots__ = (
        "changed",
        "columns",
        "entries",
        "evicted",
        "forgot",
        "json_columns",
        "key_of",
        "lookup",
        "pk",
        "read",
        "target",
    )

    def __init__(self, table: Table, target: Table) -> None:
        self.target = target
        self.pk = tuple(column.name for column in table.primary_key.columns)
        self.columns = tuple(column.name for column in table.columns)
        self.json_columns = frozenset(c.name for c in table.columns if isinstance(c.type, JSON))
        self.entries: OrderedDict[Key, _Entry] = OrderedDict()
        self.changed: dict[Key, _Entry] = {}  # written since the last flush
        self.evicted: set[int] = set()  # hash(key) of rows dropped from memory after a flush
        self.read = False  # has a handler looked a row of this table up?
        self.forgot = False  # rows were dropped without remembering their keys
        if len(self.pk) == 1:
            only = self.pk[0]
            self.key_of: Callable[[Mapping[str, Any]], Key] = lambda values: (values[only],)
        else:
            self.key_of = itemgetter(*self.pk)  # a tuple, in C
        self.lookup = select(target).where(
            *(target.c[column] == bindparam(f"pk_{column}") for column in self.pk)
        )


class RowBuffer:
    """Buffered row access over one connection; see the module docstring.

    ``targets`` redirects tables (live -> shadow). ``capacity`` bounds how many clean rows
    of each table are kept between flushes (least recently used go first); ``None`` keeps
    nothing after a flush, which is what the live projector wants, since other processes
    write the same tables between its transactions. ``fresh`` says no row this buffer may
    touch existed when it started and nothing else writes them (a rebuild's shadow, or one
    part's restaurants in it): a key it never saw is known to be absent, so looking it up
    costs no query (evicted keys are remembered, as hashes, to stay exact).
    """

    def __init__(
        self,
        conn_of: Callable[[], Connection],
        targets: Mapping[Table, Table] | None = None,
        capacity: int | None = None,
        *,
        fresh: bool = False,
    ) -> None:
        self._conn_of = conn_of
        self._targets = dict(targets or {})
        self._capacity = capacity
        self._fresh = fresh
        self._tables: dict[Table, _TableState] = {}
        self.statements = 0

    # -- the handler's side ------------------------------------------------------------------

    def get(self, table: Table, **key: Any) -> Row | None:
        state = self._state(table)
        return self._entry(state, state.key_of(key)).row

    def insert(self, table: Table, row: Mapping[str, Any]) -> None:
        state = self._state(table)
        key = state.key_of(row)
        complete = {column: row.get(column) for column in state.columns}
        entry = state.entries.get(key)
        if entry is None:
            # Never read: assume absent. The flush's plain INSERT fails loudly if it is not.
            state.entries[key] = state.changed[key] = _Entry(complete, _ABSENT)
            return
        if entry.row is not None:
            raise DuplicateRow(f"{table.name} already has a row for {key}")
        entry.row = complete
        state.changed[key] = entry

    def update(self, table: Table, key: Mapping[str, Any], **values: Any) -> Row:
        state = self._state(table)
        k = state.key_of(key)
        entry = self._entry(state, k)
        if entry.row is None:
            raise MissingRow(f"{table.name} has no row for {tuple(key.values())}")
        entry.row = {**entry.row, **values}
        state.changed[k] = entry
        return entry.row

    def delete(self, table: Table, **key: Any) -> None:
        state = self._state(table)
        k = state.key_of(key)
        entry = state.entries.get(k)
        if entry is None:
            state.entries[k] = state.changed[k] = _Entry(None, _UNKNOWN)
        elif entry.row is not None:
            entry.row = None
            state.changed[k] = entry

    def add(
        self,
        table: Table,
        key: Mapping[str, Any],
        zeros: Mapping[str, Any],
        deltas: Mapping[str, int],
        values: Mapping[str, Any] | None = None,
    ) -> None:
        """Add ``deltas`` to counters of the row at ``key``, creating it from ``zeros``."""
        row = self.get(table, **key)
        base = row if row is not None else {**key, **zeros}
        changed = {column: base[column] + delta for column, delta in deltas.items()}
        if values:
            changed.update(values)
        if row is None:
            self.insert(table, {**base, **changed})
        else:
            self.update(table, key, **changed)

    # -- the owner's side --------------------------------------------------------------------

    def prefetch(self, table: Table, keys: Iterable[Mapping[str, Any]]) -> None:
        """Load many rows in one query (an optimisation: ``get`` would load them one by one)."""
        state = self._state(table)
        wanted = {state.key_of(key) for key in keys} - state.entries.keys()
        state.read = True
        if self._fresh:
            for key in [k for k in wanted if self._known_absent(state, k)]:
                state.entries[key] = _Entry(None, _ABSENT)
                wanted.discard(key)
        if not wanted:
            return
        found: dict[Key, dict[str, Any]] = {}
        chunk = sorted(wanted)
        for start in range(0, len(chunk), 500):
            part = chunk[start : start + 500]
            query = select(state.target).where(_key_in(state.target, state.pk, part))
            self.statements += 1
            for loaded in self._conn_of().execute(query).mappings():
                row = dict(loaded)
                found[state.key_of(row)] = row
        for key in wanted:
            hit = found.get(key)
            state.entries[key] = _Entry(hit, _PRESENT if hit is not None else _ABSENT)

    def flush(self) -> int:
        """Write every change to the database in the caller's transaction; returns rows written."""
        conn = self._conn_of()
        written = 0
        for state in self._tables.values():
            written += self._flush_table(conn, state)
        self._trim()
        return written

    def clear(self) -> None:
        """Forget everything (after a rollback the held rows may not be what is stored)."""
        self._tables.clear()
        self._fresh = False  # what was committed before is no longer known

    def __len__(self) -> int:
        return sum(len(state.entries) for state in self._tables.values())

    # -- internals ---------------------------------------------------------------------------

    def _flush_table(self, conn: Connection, state: _TableState) -> int:
        target, columns = state.target, state.pk
        deleted: list[Key] = []
        inserted: list[dict[str, Any]] = []
        replaced: list[dict[str, Any]] = []
        for key, entry in state.changed.items():
            if entry.row is None:
                if entry.stored != _ABSENT:
                    deleted.append(key)
                entry.stored = _ABSENT
            elif entry.stored != _ABSENT:  # stored, or deleted unseen and written again
                replaced.append(entry.row)
                entry.stored = _PRESENT
            else:
                inserted.append(entry.row)
                entry.stored = _PRESENT
        state.changed.clear()
        for start in range(0, len(deleted), 500):
            part = deleted[start : start + 500]
            conn.execute(delete(target).where(_key_in(target, columns, part)))
            self.statements += 1
        if inserted:
            _insert_many(conn, state, inserted)
            self.statements += 1
        if replaced:
            _execute_many(conn, state, _upsert(conn, target, columns), replaced)
            self.statements += 1
        return len(deleted) + len(inserted) + len(replaced)

    def _trim(self) -> None:
        if self._capacity is None:
            self._tables.clear()
            return
        for state in self._tables.values():
            entries = state.entries
            if not state.read:
                # Written, never looked up (e.g. a history table): keeping rows or their
                # keys would only cost memory. Should a lookup come after all, it queries.
                state.forgot = state.forgot or bool(entries)
                entries.clear()
                continue
            for _ in range(len(entries) - self._capacity):
                key, entry = entries.popitem(last=False)
                if entry.stored == _PRESENT and self._fresh:
                    state.evicted.add(hash(key))
                    if len(state.evicted) > FORGET_LIMIT:
                        self._fresh = False  # bounded memory: look keys up from now on

    def _entry(self, state: _TableState, key: Key) -> _Entry:
        state.read = True
        entries = state.entries
        entry = entries.get(key)
        if entry is not None:
            if self._capacity is not None:
                entries.move_to_end(key)
            return entry
        if self._fresh and self._known_absent(state, key):
            entry = entries[key] = _Entry(None, _ABSENT)
            return entry
        self.statements += 1
        params = {f"pk_{column}": value for column, value in zip(state.pk, key, strict=True)}
        loaded = self._conn_of().execute(state.lookup, params).mappings().first()
        entry = _Entry(dict(loaded), _PRESENT) if loaded is not None else _Entry(None, _ABSENT)
        entries[key] = entry
        return entry

    @staticmethod
    def _known_absent(state: _TableState, key: Key) -> bool:
        """In fresh mode: a key this buffer never held (nor dropped) has no row."""
        return not state.forgot and hash(key) not in state.evicted

    def _state(self, table: Table) -> _TableState:
        state = self._tables.get(table)
        if state is None:
            state = self._tables[table] = _TableState(table, self._targets.get(table, table))
        return state


def _insert_many(conn: Connection, state: _TableState, rows: list[dict[str, Any]]) -> None:
    """A plain INSERT of many rows: a bulk load where the connection allows one."""
    if len(rows) >= bulkload.MIN_ROWS and bulkload.allowed(conn):
        bulkload.load(conn, state.target, rows)
        return
    _execute_many(conn, state, insert(state.target), rows)


def _execute_many(
    conn: Connection, state: _TableState, statement: Insert, rows: list[dict[str, Any]]
) -> None:
    """``statement`` once per row, batched. On MySQL/MariaDB the rows go straight to the
    driver (which renders one multi-row statement), skipping SQLAlchemy's per-row parameter
    processing: on a rebuild's millions of rows that costs as much as the driver itself."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        conn.execute(statement, rows)
        return
    sql = str(statement.compile(dialect=conn.dialect, column_keys=list(state.columns)))
    json = state.json_columns
    if json:
        rows = [{**row, **{n: jsonio.dumps(row[n]) for n in json}} for row in rows]
    conn.exec_driver_sql(sql, rows)


def _key_in(table: Table, columns: tuple[str, ...], keys: list[Key]) -> Any:
    if len(columns) == 1:
        return table.c[columns[0]].in_([key[0] for key in keys])
    return tuple_(*(table.c[column] for column in columns)).in_(keys)


def _upsert(conn: Connection, table: Table, key_columns: tuple[str, ...]) -> Insert:
    """INSERT ... ON DUPLICATE KEY UPDATE / ON CONFLICT DO UPDATE: replace whole rows."""
    others = [column.name for column in table.columns if column.name not in key_columns]
    if conn.dialect.name in ("mysql", "mariadb"):
        statement = mysql.insert(table)
        return statement.on_duplicate_key_update(
            {name: statement.inserted[name] for name in others}
        )
    if conn.dialect.name == "sqlite":
        lite = sqlite.insert(table)
        return lite.on_conflict_do_update(
            index_elements=list(key_columns), set_={name: lite.excluded[name] for name in others}
        )
    raise NotImplementedError(f"no upsert for {conn.dialect.name}")
