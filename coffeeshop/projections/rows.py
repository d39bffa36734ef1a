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
from typing import Any, Protocol

from sqlalchemy import Connection, Table, delete, insert, select, tuple_
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.sql.dml import Insert

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


@dataclass(slots=True)
class _Entry:
    row: dict[str, Any] | None
    stored: int
    dirty: bool = False


class RowBuffer:
    """Buffered row access over one connection; see the module docstring.

    ``targets`` redirects tables (live -> shadow). ``capacity`` bounds how many clean rows
    are kept between flushes (least recently used go first); ``None`` keeps nothing after a
    flush, which is what the live projector wants, since other processes write the same
    tables between its transactions.
    """

    def __init__(
        self,
        conn_of: Callable[[], Connection],
        targets: Mapping[Table, Table] | None = None,
        capacity: int | None = None,
    ) -> None:
        self._conn_of = conn_of
        self._targets = dict(targets or {})
        self._capacity = capacity
        self._entries: dict[Table, OrderedDict[Key, _Entry]] = {}
        self._pk: dict[Table, tuple[str, ...]] = {}
        self._columns: dict[Table, tuple[str, ...]] = {}
        self.statements = 0

    # -- the handler's side ------------------------------------------------------------------

    def get(self, table: Table, **key: Any) -> Row | None:
        return self._entry(table, self._key(table, key)).row

    def insert(self, table: Table, row: Mapping[str, Any]) -> None:
        key = self._key(table, row)
        entries = self._table(table)
        complete = {column: row.get(column) for column in self._columns[table]}
        entry = entries.get(key)
        if entry is None:
            # Never read: assume absent. The flush's plain INSERT fails loudly if it is not.
            entries[key] = _Entry(complete, _ABSENT, dirty=True)
            return
        if entry.row is not None:
            raise DuplicateRow(f"{table.name} already has a row for {key}")
        entry.row = complete
        entry.dirty = True

    def update(self, table: Table, key: Mapping[str, Any], **values: Any) -> Row:
        entry = self._entry(table, self._key(table, key))
        if entry.row is None:
            raise MissingRow(f"{table.name} has no row for {tuple(key.values())}")
        entry.row = {**entry.row, **values}
        entry.dirty = True
        return entry.row

    def delete(self, table: Table, **key: Any) -> None:
        entries = self._table(table)
        k = self._key(table, key)
        entry = entries.get(k)
        if entry is None:
            entries[k] = _Entry(None, _UNKNOWN, dirty=True)
        elif entry.row is not None:
            entry.row = None
            entry.dirty = True

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
        entries = self._table(table)
        wanted = {self._key(table, key) for key in keys} - entries.keys()
        if not wanted:
            return
        columns = self._pk[table]
        target = self._target(table)
        found: dict[Key, dict[str, Any]] = {}
        chunk = sorted(wanted)
        for start in range(0, len(chunk), 500):
            part = chunk[start : start + 500]
            query = select(target).where(_key_in(target, columns, part))
            self.statements += 1
            for loaded in self._conn_of().execute(query).mappings():
                row = dict(loaded)
                found[tuple(row[c] for c in columns)] = row
        for key in wanted:
            hit = found.get(key)
            entries[key] = _Entry(hit, _PRESENT if hit is not None else _ABSENT)

    def flush(self) -> int:
        """Write every change to the database in the caller's transaction; returns rows written."""
        conn = self._conn_of()
        written = 0
        for table, entries in self._entries.items():
            written += self._flush_table(conn, table, entries)
        self._trim()
        return written

    def clear(self) -> None:
        """Forget everything (after a rollback the held rows may not be what is stored)."""
        self._entries.clear()

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._entries.values())

    # -- internals ---------------------------------------------------------------------------

    def _flush_table(self, conn: Connection, table: Table, entries: dict[Key, _Entry]) -> int:
        target = self._target(table)
        columns = self._pk[table]
        deleted: list[Key] = []
        inserted: list[dict[str, Any]] = []
        replaced: list[dict[str, Any]] = []
        for key, entry in entries.items():
            if not entry.dirty:
                continue
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
            entry.dirty = False
        for start in range(0, len(deleted), 500):
            part = deleted[start : start + 500]
            conn.execute(delete(target).where(_key_in(target, columns, part)))
            self.statements += 1
        if inserted:
            conn.execute(insert(target), inserted)
            self.statements += 1
        if replaced:
            conn.execute(_upsert(conn, target, columns), replaced)
            self.statements += 1
        return len(deleted) + len(inserted) + len(replaced)

    def _trim(self) -> None:
        if self._capacity is None:
            self._entries.clear()
            return
        excess = len(self) - self._capacity
        if excess <= 0:
            return
        for entries in self._entries.values():
            while excess > 0 and entries:
                entries.popitem(last=False)
                excess -= 1

    def _entry(self, table: Table, key: Key) -> _Entry:
        entries = self._table(table)
        entry = entries.get(key)
        if entry is not None:
            if self._capacity is not None:
                entries.move_to_end(key)
            return entry
        target = self._target(table)
        condition = [
            target.c[column] == value for column, value in zip(self._pk[table], key, strict=True)
        ]
        self.statements += 1
        loaded = self._conn_of().execute(select(target).where(*condition)).mappings().first()
        entry = _Entry(dict(loaded), _PRESENT) if loaded is not None else _Entry(None, _ABSENT)
        entries[key] = entry
        return entry

    def _table(self, table: Table) -> OrderedDict[Key, _Entry]:
        entries = self._entries.get(table)
        if entries is None:
            entries = self._entries[table] = OrderedDict()
            self._pk[table] = tuple(column.name for column in table.primary_key.columns)
            self._columns[table] = tuple(column.name for column in table.columns)
        return entries

    def _key(self, table: Table, values: Mapping[str, Any]) -> Key:
        self._table(table)
        return tuple(values[column] for column in self._pk[table])

    def _target(self, table: Table) -> Table:
        return self._targets.get(table, table)


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
