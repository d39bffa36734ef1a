"""What a projection is: named handlers, one per event type, over its own read tables.

Handlers run inside the projector's transaction, together with the checkpoint update, so
an event is applied exactly once in effect. They must be deterministic functions of the
event and the current rows (no clock, no randomness): replay must equal live.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import Connection, Table

from coffeeshop.events.envelope import RecordedEvent

Handler = Callable[[Connection, RecordedEvent], None]


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
