"""The in-process bus of the embedded mode: publishing hands events to local subscribers."""

from __future__ import annotations

from collections.abc import Sequence

from coffeeshop.events.bus import BatchHandler
from coffeeshop.events.envelope import RecordedEvent


class InProcessBus:
    def __init__(self) -> None:
        self._subscribers: list[BatchHandler] = []

    def subscribe(self, handler: BatchHandler) -> None:
        self._subscribers.append(handler)

    async def publish(self, events: Sequence[RecordedEvent]) -> None:
        for handler in self._subscribers:
            await handler(events)
