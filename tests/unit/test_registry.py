"""The event registry: registration, decoding and step-by-step upcasting (pure, no database)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.errors import UnknownEventType
from coffeeshop.events.registry import DomainEvent, EventRegistry


class PriceSetV1(DomainEvent):
    event_type: ClassVar[str] = "unit.PriceSet"
    item: str
    price: str  # "3.50"


class PriceSetV3(DomainEvent):
    event_type: ClassVar[str] = "unit.PriceSet"
    schema_version: ClassVar[int] = 3
    item: str
    price_cents: int
    currency: str


def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    data["price_cents"] = int(Decimal(data.pop("price")) * 100)
    return data


def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    return data | {"currency": "EUR"}


def current_registry() -> EventRegistry:
    registry = EventRegistry()
    registry.register(PriceSetV3)
    registry.upcaster("unit.PriceSet", 1)(v1_to_v2)
    registry.upcaster("unit.PriceSet", 2)(v2_to_v3)
    return registry


def test_register_is_a_class_decorator_and_decode_builds_the_class() -> None:
    registry = EventRegistry()

    assert registry.register(PriceSetV1) is PriceSetV1
    event = registry.decode("unit.PriceSet", 1, {"item": "latte", "price": "3.50"})

    assert event == PriceSetV1(item="latte", price="3.50")
    assert registry.current_version("unit.PriceSet") == 1
    assert registry.current_version("unit.Unknown") is None


def test_registering_the_same_class_twice_is_harmless() -> None:
    registry = EventRegistry()
    registry.register(PriceSetV1)
    registry.register(PriceSetV1)
    assert registry.current_version("unit.PriceSet") == 1


def test_two_classes_under_one_name_are_refused() -> None:
    registry = EventRegistry()
    registry.register(PriceSetV1)

    with pytest.raises(ValueError, match="registered twice"):
        registry.register(PriceSetV3)

    assert registry.current_version("unit.PriceSet") == 1  # the first one stays
    with pytest.raises(ValueError, match="registered twice"):

        @registry.register
        class _Imposter(DomainEvent):  # a new class reusing the name, e.g. a copy-paste
            event_type: ClassVar[str] = "unit.PriceSet"


def test_old_payloads_are_upcast_step_by_step_to_the_current_version() -> None:
    registry = current_registry()
    stored = {"item": "latte", "price": "3.50"}

    version, data = registry.upcast("unit.PriceSet", 1, stored)

    assert (version, data) == (3, {"item": "latte", "price_cents": 350, "currency": "EUR"})
    assert stored == {"item": "latte", "price": "3.50"}  # the stored payload is not mutated
    assert registry.upcast("unit.PriceSet", 2, {"item": "tea", "price_cents": 250}) == (
        3,
        {"item": "tea", "price_cents": 250, "currency": "EUR"},
    )
    assert registry.decode("unit.PriceSet", 1, stored) == PriceSetV3(
        item="latte", price_cents=350, currency="EUR"
    )


def test_a_current_payload_is_left_alone() -> None:
    registry = EventRegistry()
    registry.register(PriceSetV3)

    def never(data: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("an upcaster ran on a current payload")

    registry.upcaster("unit.PriceSet", 3)(never)
    payload = {"item": "tea", "price_cents": 250, "currency": "GBP"}
    assert registry.upcast("unit.PriceSet", 3, payload) == (3, payload)


def test_a_missing_upcaster_raises_unknown_event_type() -> None:
    registry = EventRegistry()
    registry.register(PriceSetV3)
    registry.upcaster("unit.PriceSet", 1)(v1_to_v2)  # but nothing for v2 -> v3

    with pytest.raises(UnknownEventType, match="v2 -> v3"):
        registry.upcast("unit.PriceSet", 1, {"item": "latte", "price": "3.50"})
    with pytest.raises(UnknownEventType):
        registry.decode("unit.PriceSet", 1, {"item": "latte", "price": "3.50"})


def test_upcasters_are_kept_per_event_type() -> None:
    registry = EventRegistry()
    registry.register(PriceSetV3)
    registry.upcaster("unit.Other", 1)(v1_to_v2)
    registry.upcaster("unit.Other", 2)(v2_to_v3)

    with pytest.raises(UnknownEventType):
        registry.upcast("unit.PriceSet", 1, {"item": "latte", "price": "3.50"})


def test_unknown_types_pass_through_upcast_but_cannot_be_decoded() -> None:
    registry = current_registry()
    payload = {"anything": 1}

    assert registry.upcast("unit.Unknown", 1, payload) == (1, payload)
    with pytest.raises(UnknownEventType, match=r"unit\.Unknown"):
        registry.decode("unit.Unknown", 1, payload)


def test_decoding_validates_the_payload() -> None:
    registry = current_registry()
    with pytest.raises(ValidationError):
        registry.decode("unit.PriceSet", 3, {"item": "tea", "price_cents": 250})
    with pytest.raises(ValidationError):  # extra fields are refused, not dropped
        registry.decode(
            "unit.PriceSet", 3, {"item": "tea", "price_cents": 1, "currency": "EUR", "x": 1}
        )


def test_events_are_frozen_and_dump_json_payloads() -> None:
    class Stamped(DomainEvent):
        event_type: ClassVar[str] = "unit.Stamped"
        at: datetime
        amount: Decimal

    event = Stamped(at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), amount=Decimal("1.50"))
    with pytest.raises(ValidationError):
        event.amount = Decimal(2)  # type: ignore[misc]
    assert event.payload() == {"at": "2026-01-02T03:04:05Z", "amount": "1.50"}


def test_recorded_event_decode_goes_through_the_registry() -> None:
    recorded = RecordedEvent(
        id=1,
        event_id="e",
        restaurant_id="r",
        seq=1,
        stream_type="menu",
        stream_id="s",
        version=1,
        type="unit.PriceSet",
        schema_version=1,
        data={"item": "latte", "price": "3.50"},
        metadata={},
        recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert recorded.decode(current_registry()) == PriceSetV3(
        item="latte", price_cents=350, currency="EUR"
    )
