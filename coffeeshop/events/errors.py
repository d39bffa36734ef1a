"""Errors raised by the event store."""


class EventStoreError(Exception):
    """Base class for event store failures the caller can act on."""


class ConcurrencyError(EventStoreError):
    """The stream moved on since the caller loaded it."""

    def __init__(self, stream_id: str, expected_version: int, current_version: int) -> None:
        super().__init__(
            f"stream {stream_id} is at version {current_version}, expected {expected_version}"
        )
        self.stream_id = stream_id
        self.expected_version = expected_version
        self.current_version = current_version


class IdempotencyKeyReused(EventStoreError):
    """The idempotency key was already used with a different request body."""

    def __init__(self, key: str) -> None:
        super().__init__(f"idempotency key {key!r} was used with a different request")
        self.key = key


class UnknownEventType(EventStoreError):
    """A stored event names a type no registered class handles."""
