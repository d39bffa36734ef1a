"""The bus contract: how committed events travel from the relay to projectors.

The bus is a fast doorbell, not a source of truth: messages carry the full envelope so a
projector usually needs nothing else, but one that is lost, duplicated or reordered is
healed from the event store. Each restaurant maps to one partition stream, so its events
stay in seq order within a partition.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from coffeeshop.events.clock import as_utc
from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.registry import EventRegistry

STREAM_PREFIX = "coffeeshop.events"
BatchHandler = Callable[[Sequence[RecordedEvent]], Awaitable[None]]


class EventPublisher(Protocol):
    async def publish(self, events: Sequence[RecordedEvent]) -> None:
        """Deliver ``events`` (in the given order) or raise; the caller retries."""


def partition_of(restaurant_id: str, partitions: int) -> int:
    """Stable across processes and releases (unlike hash())."""
    return zlib.crc32(restaurant_id.encode()) % partitions


def stream_name(partition: int) -> str:
    return f"{STREAM_PREFIX}.{partition}"


def to_message(event: RecordedEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "event_id": event.event_id,
        "restaurant_id": event.restaurant_id,
        "seq": event.seq,
        "stream_type": event.stream_type,
        "stream_id": event.stream_id,
        "version": event.version,
        "type": event.type,
        "schema_version": event.schema_version,
        "data": event.data,
        "metadata": event.metadata,
        "recorded_at": event.recorded_at.isoformat(),
    }


def from_message(body: dict[str, Any], registry: EventRegistry) -> RecordedEvent:
    """Rebuild an envelope from a message, upcasting like every other read path."""
    schema_version, data = registry.upcast(body["type"], body["schema_version"], body["data"])
    return RecordedEvent(
        id=int(body["id"]),
        event_id=body["event_id"],
        restaurant_id=body["restaurant_id"],
        seq=int(body["seq"]),
        stream_type=body["stream_type"],
        stream_id=body["stream_id"],
        version=int(body["version"]),
        type=body["type"],
        schema_version=schema_version,
        data=data,
        metadata=body["metadata"],
        recorded_at=as_utc(datetime.fromisoformat(body["recorded_at"])),
    )
