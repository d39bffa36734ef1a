"""What a projection is: named handlers, one per event type, over its own read tables.

Handlers change rows only through :class:`~coffeeshop.projections.rows.Rows`, inside the
projector's transaction and together with the checkpoint update, so an event is applied
exactly once in effect. They must be deterministic functions of the event and the current
rows (no clock, no randomness): replay must equal live. Because they never name a database
table themselves, the same handlers fill live, shadow (rebuild) and scratch (verify) tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from sqlalchemy import Connection, Table

from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.registry import DomainEvent, registry
from coffeeshop.projections.rows import Rows
from coffeeshop.projections.tracking import checkpoint_table

Handler = Callable[[Rows, RecordedEvent], None]
Prefetch = Callable[[Rows, Sequence[RecordedEvent]], None]
E = TypeVar("E", bound=DomainEvent)


class CacheWriter(Protocol):
    """What a projection may do to the read cache (the queries' Cache fits)."""

    def set(self, key: str, value: bytes, ttl_s: int) -> None: ...


Announce = Callable[[Connection, CacheWriter, Sequence[str]], None]
"""Runs in the projector's transaction on the live tables, after the rows are written and
before the commit, for the restaurants whose events the projection handled: it tells the
cache what that transaction makes current."""


def decode(event: RecordedEvent, kind: type[E]) -> E:
    """The event's payload as its (upcast) class; a handler registered for the wrong
    type fails loudly instead of reading the wrong fields."""
    decoded = event.decode(registry)
    if not isinstance(decoded, kind):
        raise TypeError(f"{event.type} decoded as {type(decoded).__name__}, not {kind.__name__}")
    return decoded


def _no_prefetch(_rows: Rows, _events: Sequence[RecordedEvent]) -> None:
    return None


@dataclass(frozen=True)
class Projection:
    """A read model. ``tables`` are its read tables; every one has a ``restaurant_id`` column,
    which is what lets a single tenant be rebuilt or compared on its own. ``prefetch`` may
    load, in a few queries, the rows a batch of events is about to touch. ``checkpoint``
    defaults to the ``<name>_checkpoints`` table of the application's schema. ``weight`` is
    the relative cost of rebuilding it, used to spread a replay over parallel jobs.
    ``announce``, if any, is told about the live changes (rebuilds and verifies write other
    tables and announce nothing)."""

    name: str
    tables: tuple[Table, ...]
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    prefetch: Prefetch = _no_prefetch
    checkpoint: Table | None = None
    weight: int = 1
    announce: Announce | None = None

    @property
    def checkpoints(self) -> Table:
        return self.checkpoint if self.checkpoint is not None else checkpoint_table(self.name)

    @property
    def all_tables(self) -> tuple[Table, ...]:
        """Read tables and checkpoints: what a rebuild copies and swaps as one."""
        return (*self.tables, self.checkpoints)

    def apply(self, rows: Rows, event: RecordedEvent) -> None:
        handler = self.handlers.get(event.type)
        if handler is not None:
            handler(rows, event)

    def handles(self, event_type: str) -> bool:
        return event_type in self.handlers
