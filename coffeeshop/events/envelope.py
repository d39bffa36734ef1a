"""What the store writes and returns around an event's payload."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from coffeeshop.events.registry import DomainEvent, EventRegistry


@dataclass(frozen=True, slots=True)
class StreamRef:
    """An aggregate's stream; every stream belongs to exactly one restaurant."""

    restaurant_id: str
    stream_type: str
    stream_id: str


@dataclass(frozen=True, slots=True)
class StreamWrite:
    """Events to append to one stream, valid only if it is still at ``expected_version``."""

    stream: StreamRef
    expected_version: int
    events: tuple[DomainEvent, ...]


@dataclass(frozen=True, slots=True)
class EventMetadata:
    correlation_id: str | None = None
    causation_id: str | None = None
    request_id: str | None = None
    actor: str | None = None
    idempotency_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body = {
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "request_id": self.request_id,
            "actor": self.actor,
            "idempotency_key": self.idempotency_key,
        }
        return {k: v for k, v in body.items() if v is not None} | self.extra


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as committed: its place in the stream and in the restaurant's sequence."""

    id: int
    event_id: str
    restaurant_id: str
    seq: int
    stream_type: str
    stream_id: str
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime
    decoded: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)
    """The payload as its class, once decoded (several projections read the same event)."""

    def decode(self, registry: EventRegistry) -> DomainEvent:
        if not self.decoded:
            self.decoded.append(registry.decode(self.type, self.schema_version, self.data))
        return self.decoded[0]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The response recorded with an idempotency key, replayed on a retry."""

    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AppendResult:
    stream_id: str
    version: int
    position: int
    response: StoredResponse | None = None
    replayed: bool = False
