"""The projector: exactly-once effect under duplication, loss and reordering; loud failure."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine

from coffeeshop.events.envelope import RecordedEvent
from coffeeshop.events.registry import registry
from coffeeshop.events.store import EventStore
from coffeeshop.projections import tracking
from coffeeshop.projections.projector import ProjectionFailed, Projector, catch_up_together
from tests.integration.read_side_helpers import (
    append_categories,
    applied_seqs,
    logging_projection,
    metadata,
)


@pytest.fixture
def store(engine: Engine) -> EventStore:
    metadata.create_all(engine)
    return EventStore(engine, registry)


def _projector(engine: Engine, store: EventStore, **kwargs: object) -> Projector:
    name = f"t{uuid.uuid4().hex[:12]}"
    return Projector(logging_projection(engine, name, **kwargs), engine, store)  # type: ignore[arg-type]


def test_catch_up_applies_every_event_once_in_seq_order(engine: Engine, store: EventStore) -> None:
    restaurant = str(uuid.uuid4())
    append_categories(store, restaurant, ["a", "b", "c"])
    projector = _projector(engine, store)

    assert projector.catch_up_restaurant(restaurant, store.head(restaurant)) == 4
    assert projector.catch_up_restaurant(restaurant, store.head(restaurant)) == 0
    assert applied_seqs(engine, projector.name, restaurant) == [1, 2, 3, 4]
    with engine.connect() as conn:
        assert tracking.checkpoint_of(
            conn, projector.projection.checkpoints, restaurant
        ) == store.head(restaurant)


def test_duplicated_reordered_and_lost_deliveries_converge(
    engine: Engine, store: EventStore
) -> None:
    restaurant = str(uuid.uuid4())
    append_categories(store, restaurant, [f"c{i}" for i in range(12)])
    events = store.read_restaurant(restaurant)
    projector = _projector(engine, store)
    rng = random.Random(7)

    delivered = events + rng.sample(events, 6)  # duplicates
    rng.shuffle(delivered)
    delivered = [e for e in delivered if e.seq != 5]  # one message lost entirely
    for start in range(0, len(delivered), 4):
        projector.apply_batch(delivered[start : start + 4])

    assert applied_seqs(engine, projector.name, restaurant) == [e.seq for e in events]


def test_a_later_event_first_fetches_the_missing_ones_from_the_store(
    engine: Engine, store: EventStore
) -> None:
    restaurant = str(uuid.uuid4())
    append_categories(store, restaurant, ["a", "b", "c"])
    last = store.read_restaurant(restaurant)[-1]
    projector = _projector(engine, store)

    assert projector.apply_batch([last]) == 4
    assert applied_seqs(engine, projector.name, restaurant) == [1, 2, 3, 4]


def test_restaurants_are_tracked_independently(engine: Engine, store: EventStore) -> None:
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    append_categories(store, first, ["a"])
    append_categories(store, second, ["a", "b"])
    projector = _projector(engine, store)

    projector.apply_batch(store.read_restaurant(second))
    assert applied_seqs(engine, projector.name, first) == []
    assert applied_seqs(engine, projector.name, second) == [1, 2, 3]
    assert projector.catch_up() >= 2
    assert applied_seqs(engine, projector.name, first) == [1, 2]


def test_a_failing_handler_stops_the_projection_without_skipping(
    engine: Engine, store: EventStore
) -> None:
    restaurant = str(uuid.uuid4())
    append_categories(store, restaurant, ["ok", "poison", "after"])
    projector = _projector(engine, store, fail_on="poison")

    with pytest.raises(ProjectionFailed, match="poison"):
        projector.catch_up_restaurant(restaurant, store.head(restaurant))
    with pytest.raises(ProjectionFailed):
        projector.apply_batch(store.read_restaurant(restaurant))

    # It stops exactly before "poison" (seq 2): "ok" is applied, nothing at or after it.
    assert applied_seqs(engine, projector.name, restaurant) == [1]
    with engine.connect() as conn:
        state, error = tracking.states(conn)[projector.name]
        assert tracking.checkpoint_of(conn, projector.projection.checkpoints, restaurant) == 1
    assert state == "failed"
    assert error is not None
    assert "poison" in error


class _CountingReads(EventStore):
    """The real store, counting how often catch-up reads each restaurant's events."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, registry)
        self.reads: Counter[str] = Counter()

    def read_restaurant(self, restaurant_id: str, *args: Any, **kwargs: Any) -> list[RecordedEvent]:
        self.reads[restaurant_id] += 1
        return super().read_restaurant(restaurant_id, *args, **kwargs)


def test_projections_caught_up_together_read_the_store_once_for_all(engine: Engine) -> None:
    metadata.create_all(engine)
    store = _CountingReads(engine)
    restaurant = str(uuid.uuid4())
    append_categories(store, restaurant, ["a", "b", "c"])
    ahead, behind = _projector(engine, store), _projector(engine, store)
    ahead.catch_up_restaurant(restaurant, 2)  # one projection is further along
    append_categories(store, restaurant, ["d"])
    store.reads.clear()

    catch_up_together([ahead, behind], store)

    head = store.head(restaurant)
    assert store.reads[restaurant] == 1  # one batch, from the lowest checkpoint, for both
    assert applied_seqs(engine, ahead.name, restaurant) == list(range(1, head + 1))
    assert applied_seqs(engine, behind.name, restaurant) == list(range(1, head + 1))


def test_a_failing_projection_caught_up_together_does_not_hold_the_others_back(
    engine: Engine, store: EventStore
) -> None:
    restaurant = str(uuid.uuid4())
    append_categories(store, restaurant, ["ok", "poison", "after"])
    broken, healthy = _projector(engine, store, fail_on="poison"), _projector(engine, store)
    errors: list[tuple[str, Exception]] = []

    catch_up_together([broken, healthy], store, lambda p, e: errors.append((p.name, e)))

    assert [(name, type(error)) for name, error in errors] == [(broken.name, ProjectionFailed)]
    assert applied_seqs(engine, healthy.name, restaurant) == [1, 2, 3, 4]
    # It stopped at the first poison it met (other tests' restaurants may hold one too).
    assert 2 not in applied_seqs(engine, broken.name, restaurant)
