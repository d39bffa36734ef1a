"""The projector: exactly-once effect under duplication, loss and reordering; loud failure."""

from __future__ import annotations

import random
import uuid

import pytest
from sqlalchemy import Engine

from coffeeshop.events.registry import registry
from coffeeshop.events.store import EventStore
from coffeeshop.projections import tracking
from coffeeshop.projections.projector import ProjectionFailed, Projector
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
