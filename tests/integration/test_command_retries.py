"""The command pipeline's way out of a livelock, on MariaDB and on SQLite.

A command that also writes to a stream other writers keep moving (archiving an item detaches
it from a busy category) can lose every optimistic race. After ``optimistic_attempts`` lost
races the executor decides once more holding the restaurant's append lock: that attempt must
win, see the latest state, keep If-Match semantics, and leave ``seq`` without holes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
from sqlalchemy import Engine

from coffeeshop.commands.errors import RuleViolation, VersionMismatch
from coffeeshop.commands.handling import CommandContext, CommandExecutor, Decision
from coffeeshop.events.clock import utc_now
from coffeeshop.events.envelope import StreamRef, StreamWrite
from coffeeshop.events.errors import ConcurrencyError
from coffeeshop.events.registry import DomainEvent, EventRegistry
from coffeeshop.events.store import EventStore

registry = EventRegistry()
RIVAL_WAIT_S = 0.3  # how long an attempt waits for the rival's write before it appends


@registry.register
class Noted(DomainEvent):
    event_type: ClassVar[str] = "test_retries.Noted"
    by: str


@dataclass
class Rival:
    """Another writer that appends to ``stream`` each time it is asked to, retrying its own
    conflicts: while the executor holds the append lock, it waits for the lock."""

    store: EventStore
    stream: StreamRef
    asked: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    done: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    writes: int = 0
    stop: bool = False

    def run(self) -> None:
        while True:
            self.asked.acquire()
            if self.stop:
                return
            while True:
                version = self.store.stream_version(self.stream.stream_id)
                try:
                    self.store.append(self.stream, version, [Noted(by="rival")])
                    break
                except ConcurrencyError:
                    continue
            self.writes += 1
            self.done.release()

    def move(self) -> bool:
        """Ask for one write and wait for it; False when it could not land in time."""
        self.asked.release()
        return self.done.acquire(timeout=RIVAL_WAIT_S)


@pytest.fixture
def store(engine: Engine) -> EventStore:
    return EventStore(engine, registry)


@pytest.fixture
def restaurant() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def rival(store: EventStore, restaurant: str) -> Iterator[Rival]:
    busy = Rival(store, StreamRef(restaurant, "category", str(uuid.uuid4())))
    thread = threading.Thread(target=busy.run, daemon=True)
    thread.start()
    yield busy
    busy.stop = True
    busy.asked.release()
    thread.join(timeout=10)
    # The rival's last write waited for the lock and landed after the command committed.
    while busy.done.acquire(timeout=0):
        pass


def _ctx(restaurant: str, **kwargs: object) -> CommandContext:
    return CommandContext(restaurant_id=restaurant, actor="test", **kwargs)  # type: ignore[arg-type]


def _archive_like(
    executor: CommandExecutor,
    ctx: CommandContext,
    primary: StreamRef,
    busy: StreamRef,
    before_append: Callable[[], None] = lambda: None,
) -> tuple[Callable[[], Decision], list[int]]:
    """An attempt that writes to ``primary`` and detaches from ``busy``, as archiving an
    item does; it records the busy stream's version each attempt saw."""
    seen: list[int] = []

    def attempt() -> Decision:
        loaded = executor.streams(ctx, [primary.stream_id, busy.stream_id])
        version = len(loaded[primary.stream_id])
        if ctx.if_match is not None and ctx.if_match != version:
            raise VersionMismatch(ctx.if_match, version)
        seen.append(len(loaded[busy.stream_id]))
        before_append()
        return Decision(
            aggregate_id=primary.stream_id,
            primary=StreamWrite(primary, version, (Noted(by="command"),)),
            others=[StreamWrite(busy, len(loaded[busy.stream_id]), (Noted(by="command"),))],
        )

    return attempt, seen


def _assert_gap_free(store: EventStore, restaurant: str) -> None:
    recorded = store.read_restaurant(restaurant, 0, limit=10_000)
    assert [event.seq for event in recorded] == list(range(1, len(recorded) + 1))
    assert store.head(restaurant) == len(recorded)
    by_stream: dict[str, list[int]] = {}
    for event in recorded:
        by_stream.setdefault(event.stream_id, []).append(event.version)
    for versions in by_stream.values():
        assert versions == list(range(1, len(versions) + 1))


def test_a_command_that_loses_every_optimistic_race_wins_under_the_append_lock(
    store: EventStore, restaurant: str, rival: Rival
) -> None:
    executor = CommandExecutor(store, utc_now, optimistic_attempts=3)
    ctx = _ctx(restaurant)
    primary = StreamRef(restaurant, "menu_item", str(uuid.uuid4()))
    store.append(primary, 0, [Noted(by="setup")])
    landed: list[bool] = []
    attempt, seen = _archive_like(
        executor, ctx, primary, rival.stream, lambda: landed.append(rival.move())
    )

    result = executor.run(ctx, attempt, command="test")

    # Three optimistic attempts lost to the rival's write; the fourth held the lock, so the
    # rival could not land in time and the command appended on the version it loaded.
    assert landed == [True, True, True, False]
    assert seen == [0, 1, 2, 3]
    assert result.status_code == 200
    assert result.version == 2
    detached = store.load_stream(restaurant, rival.stream.stream_id)
    assert [event.data["by"] for event in detached[:4]] == ["rival"] * 3 + ["command"]
    assert rival.done.acquire(timeout=10)  # the fourth rival write, once the lock went
    assert rival.writes == 4
    _assert_gap_free(store, restaurant)


def test_the_serialized_attempt_keeps_if_match_pinned_to_the_primary(
    store: EventStore, restaurant: str, rival: Rival
) -> None:
    executor = CommandExecutor(store, utc_now, optimistic_attempts=2)
    primary = StreamRef(restaurant, "menu_item", str(uuid.uuid4()))
    store.append(primary, 0, [Noted(by="setup")])

    pinned = _ctx(restaurant, if_match=1)
    attempt, _ = _archive_like(executor, pinned, primary, rival.stream, rival.move)
    assert executor.run(pinned, attempt, command="test").version == 2  # busy stream ignored
    assert rival.done.acquire(timeout=10)  # its write that waited for the lock has landed

    stale = _ctx(restaurant, if_match=1)  # the primary is at 2 now
    attempt, seen = _archive_like(executor, stale, primary, rival.stream, rival.move)
    with pytest.raises(VersionMismatch):
        executor.run(stale, attempt, command="test")
    assert seen == []
    _assert_gap_free(store, restaurant)


def test_a_restaurant_first_append_can_be_serialized(store: EventStore, restaurant: str) -> None:
    executor = CommandExecutor(store, utc_now, optimistic_attempts=0)
    ctx = _ctx(restaurant)
    primary = StreamRef(restaurant, "order", str(uuid.uuid4()))
    busy = StreamRef(restaurant, "category", str(uuid.uuid4()))
    attempt, _ = _archive_like(executor, ctx, primary, busy)

    result = executor.run(ctx, attempt, creates=True, command="test")

    assert (result.status_code, result.version, result.body["position"]) == (201, 1, 2)
    _assert_gap_free(store, restaurant)


def test_a_replayed_key_under_the_append_lock_leaves_no_hole_in_seq(
    store: EventStore, restaurant: str
) -> None:
    executor = CommandExecutor(store, utc_now, optimistic_attempts=0)
    ctx = _ctx(restaurant, idempotency_key="till-1-0001", request_hash="h")
    primary = StreamRef(restaurant, "order", str(uuid.uuid4()))
    busy = StreamRef(restaurant, "category", str(uuid.uuid4()))
    first, _ = _archive_like(executor, ctx, primary, busy)
    original = executor.run(ctx, first, creates=True, command="test")

    # A retry that loads fresh state decides to append again; the key replays the original.
    other = StreamRef(restaurant, "order", str(uuid.uuid4()))
    again, _ = _archive_like(executor, ctx, other, busy)
    retried = executor.run(ctx, again, creates=True, command="test")

    assert retried.replayed
    assert retried.body == original.body
    assert store.load_stream(restaurant, other.stream_id) == []
    store.append(other, 0, [Noted(by="next")])
    _assert_gap_free(store, restaurant)


def test_a_refusal_under_the_append_lock_rolls_back_and_releases_it(
    store: EventStore, restaurant: str
) -> None:
    executor = CommandExecutor(store, utc_now, optimistic_attempts=0)
    ctx = _ctx(restaurant)
    primary = StreamRef(restaurant, "order", str(uuid.uuid4()))

    def refuse() -> Decision:
        executor.streams(ctx, [primary.stream_id])
        raise RuleViolation("no")

    with pytest.raises(RuleViolation):
        executor.run(ctx, refuse, command="test")

    # Another thread can append at once: the lock went with the rollback.
    appended = threading.Event()

    def append() -> None:
        store.append(primary, 0, [Noted(by="after")])
        appended.set()

    threading.Thread(target=append, daemon=True).start()
    assert appended.wait(timeout=5)
    _assert_gap_free(store, restaurant)
