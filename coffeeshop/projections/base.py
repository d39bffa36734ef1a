"""What a projection is: named handlers, one per event type, over its own read tables.

Handlers run inside the projector's transaction, together with the checkpoint update, so
an event is applied exactly once in effect. They must be deterministic functions of the
event and the current rows (no clock, no randomness): replay must equal live.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Connection, Table

from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.registry import DomainEvent, registry

Handler = Callable[[Connection, RecordedEvent], None]
E = TypeVar("E", bound=DomainEvent)


def decode(event: RecordedEvent, kind: type[E]) -> E:
    """The event's payload as its (upcast) class; a handler registered for the wrong
    type fails loudly instead of reading the wrong fields."""
    decoded = event.decode(registry)
    if not isinstance(decoded, kind):
        raise TypeError(f"{event.type} decoded as {type(decoded).__name__}, not {kind.__name__}")
    return decoded


@dataclass(frozen=True)
class Projection:
    name: str
    tables: tuple[Table, ...]
    handlers: Mapping[str, Handler] = field(default_factory=dict)

    def apply(self, conn: Connection, event: RecordedEvent) -> None:
        handler = self.handlers.get(event.type)
        if handler is not None:
            handler(conn, event)

    def handles(self, event_type: str) -> bool:
        return event_type in self.handlers
