"""Explicit event classes, their registry and the upcasters that migrate old payloads.

Every event type is a frozen pydantic model with a stable ``event_type`` name and a
``schema_version``. Stored payloads of an older version are upcast step by step
(v1 -> v2 -> ...) on every read path, so the rest of the code only sees the current shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict

from coffeeshop.events.errors import UnknownEventType

Payload = dict[str, Any]
Upcaster = Callable[[Payload], Payload]
E = TypeVar("E", bound="DomainEvent")


class DomainEvent(BaseModel):
    """Base of every event: immutable, strictly shaped, named in the past tense."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1

    def payload(self) -> Payload:
        return self.model_dump(mode="json")


class EventRegistry:
    """Maps stored type names to classes and upgrades old payloads to the current schema."""

    def __init__(self) -> None:
        self._classes: dict[str, type[DomainEvent]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, cls: type[E]) -> type[E]:
        """Class decorator: make ``cls`` decodable by its ``event_type``."""
        existing = self._classes.get(cls.event_type)
        if existing is not None and existing is not cls:
            raise ValueError(f"event type {cls.event_type!r} is registered twice")
        self._classes[cls.event_type] = cls
        return cls

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: turn a ``from_version`` payload into ``from_version + 1``."""

        def decorate(function: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = function
            return function

        return decorate

    def current_version(self, event_type: str) -> int | None:
        cls = self._classes.get(event_type)
        return None if cls is None else cls.schema_version

    def upcast(self, event_type: str, schema_version: int, data: Payload) -> tuple[int, Payload]:
        """Bring a stored payload up to the registered class's version (unknown types pass)."""
        target = self.current_version(event_type)
        if target is None:
            return schema_version, data
        while schema_version < target:
            step = self._upcasters.get((event_type, schema_version))
            if step is None:
                raise UnknownEventType(
                    f"no upcaster for {event_type} v{schema_version} -> v{schema_version + 1}"
                )
            data = step(dict(data))
            schema_version += 1
        return schema_version, data

    def decode(self, event_type: str, schema_version: int, data: Payload) -> DomainEvent:
        cls = self._classes.get(event_type)
        if cls is None:
            raise UnknownEventType(f"unknown event type {event_type!r}")
        _, current = self.upcast(event_type, schema_version, data)
        return cls.model_validate(current)


registry = EventRegistry()
"""The registry of this application's event classes (filled by the event modules)."""
