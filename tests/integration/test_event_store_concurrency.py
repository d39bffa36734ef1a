"""The event store under concurrent writers, on MariaDB and on SQLite (which serialises writers).

These tests prove the write-side guarantees of DESIGN.md ("Write side"): exactly one writer wins
each stream version; a restaurant's seq is gap-free and in commit order; the outbox relay sees
every committed event exactly once and never a rolled-back one; an idempotency key records one
outcome however many requests race with it.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import ClassVar, TypeVar

import pytest
from sqlalchemy import Engine, func, select

from coffeeshop.events.envelope import AppendResult, StoredResponse, StreamRef
from coffeeshop.events.errors import ConcurrencyError
from coffeeshop.events.idempotency import IdempotencyClaim
from coffeeshop.events.outbox import claim_batch, delete_entries
from coffeeshop.events.registry import DomainEvent, EventRegistry
from coffeeshop.events.schema import idempotency_keys
from coffeeshop.events.store import EventStore

T = TypeVar("T")
registry = EventRegistry()


@registry.register
class Ticked(DomainEvent):
    event_type: ClassVar[str] = "test_concurrency.Ticked"
    token: str


def new_id() -> str:
    return str(uuid.uuid4())


def run_threads(count: int, target: Callable[[int], T], timeout: float = 60) -> list[T]:
    """Run ``target(i)`` on ``count`` threads; re-raise the first failure of any of them."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(target, i) for i in range(count)]
        return [future.result(timeout=timeout) for future in futures]


# -- (1) one stream, many writers ------------------------------------------------------------


def test_exactly_one_writer_wins_each_version(engine: Engine) -> None:
    threads, appends_each = 20, 2
    store = EventStore(engine, registry)
    restaurant, stream_id = new_id(), new_id()
    ref = StreamRef(restaurant, "order", stream_id)
    start = threading.Barrier(threads)
    lock = threading.Lock()
    wins: list[tuple[int, AppendResult, list[str]]] = []  # expected version, result, tokens
    lost_tokens: list[str] = []
    conflicts: list[ConcurrencyError] = []

    def writer(i: int) -> None:
        done = attempt = 0
        while done < appends_each:
            attempt += 1
            loaded = store.load_stream(restaurant, stream_id)
            expected = loaded[-1].version if loaded else 0
            tokens = [f"{i}.{attempt}.{k}" for k in range(1 + (i + attempt) % 3)]
            if attempt == 1:
                start.wait()  # everyone has loaded version 0: the first round must conflict
            try:
                result = store.append(ref, expected, [Ticked(token=t) for t in tokens])
            except ConcurrencyError as exc:
                with lock:
                    conflicts.append(exc)
                    lost_tokens.extend(tokens)
                continue
            with lock:
                wins.append((expected, result, tokens))
            done += 1

    run_threads(threads, writer)

    assert len(wins) == threads * appends_each
    assert len(conflicts) >= threads - 1
    for exc in conflicts:
        assert exc.stream_id == stream_id
        assert exc.current_version > exc.expected_version  # the stream only moves forward
    # Each winner appended right after the previous one: the won ranges tile 1..N exactly.
    wins.sort(key=lambda win: win[0])
    version = 0
    for expected, result, tokens in wins:
        assert expected == version
        assert result.version == expected + len(tokens)
        version = result.version
    total = version
    assert total == sum(len(tokens) for _, _, tokens in wins)
    assert store.stream_version(stream_id) == total

    events = store.load_stream(restaurant, stream_id)
    assert [e.version for e in events] == list(range(1, total + 1))
    assert [e.data["token"] for e in events] == [t for _, _, tokens in wins for t in tokens]
    assert not {e.data["token"] for e in events} & set(lost_tokens)
    assert [e.seq for e in store.read_restaurant(restaurant)] == list(range(1, total + 1))
    assert store.head(restaurant) == total
    # Positions agree with the seqs the events got.
    by_version = {e.version: e.seq for e in events}
    for _, result, _ in wins:
        assert by_version[result.version] == result.position


# -- (2) writers with rollbacks, an outbox tailer and a snapshot reader ----------------------


class Boom(Exception):
    """Raised inside an append's transaction to roll it back."""


@dataclass(frozen=True)
class Committed:
    restaurant_id: str
    stream_id: str
    tokens: tuple[str, ...]
    first_seq: int
    last_seq: int
    started: float  # perf_counter before append() was called
    returned: float  # perf_counter after it returned (the commit happened in between)


def test_writers_with_rollbacks_never_leave_holes_and_the_outbox_sees_each_commit_once(
    engine: Engine,
) -> None:
    writers, attempts_each = 8, 25
    store = EventStore(engine, registry)
    busy, quiet_a, quiet_b = new_id(), new_id(), new_id()
    restaurants = (busy, quiet_a, quiet_b)
    lock = threading.Lock()
    committed: list[Committed] = []
    rolled_back: set[str] = set()
    writers_done = threading.Event()
    tailed: list[tuple[str, int, str]] = []  # restaurant, seq, token, as the relay saw them
    snapshot_tokens: set[str] = set()
    snapshot_problems: list[str] = []
    snapshots = [0]

    def writer(i: int) -> None:
        rng = random.Random(i)
        # Writers 0-3 share the busy restaurant; the others spread over all three. Each writer
        # owns its streams, so it never conflicts: any ConcurrencyError here is a bug.
        homes = (busy,) if i < 4 else restaurants
        streams = {r: [StreamRef(r, "order", new_id()) for _ in range(2)] for r in homes}
        versions: dict[str, int] = defaultdict(int)
        for attempt in range(attempts_each):
            ref = rng.choice(streams[rng.choice(homes)])
            tokens = tuple(f"w{i}.{attempt}.{k}" for k in range(rng.randint(1, 3)))
            doomed = rng.random() < 0.3
            pause = rng.random() / 500

            def respond(
                result: AppendResult, doomed: bool = doomed, pause: float = pause
            ) -> StoredResponse:
                time.sleep(pause)  # hold the locks and the uncommitted rows a little longer
                if doomed:
                    raise Boom
                return StoredResponse(201, {"position": result.position})

            claim = IdempotencyClaim(new_id(), "hash", respond)
            started = time.perf_counter()
            try:
                result = store.append(
                    ref,
                    versions[ref.stream_id],
                    [Ticked(token=t) for t in tokens],
                    idempotency=claim,
                )
            except Boom:
                with lock:
                    rolled_back.update(tokens)
                continue
            returned = time.perf_counter()
            versions[ref.stream_id] += len(tokens)
            assert result.version == versions[ref.stream_id]
            with lock:
                committed.append(
                    Committed(
                        ref.restaurant_id,
                        ref.stream_id,
                        tokens,
                        result.position - len(tokens) + 1,
                        result.position,
                        started,
                        returned,
                    )
                )

    def tailer() -> None:
        """A relay: claim a batch, 'publish' it, delete it, in one transaction per batch.

        It drains every outbox row, including other tests' leftovers, as a real relay would.
        """
        while True:
            finished = writers_done.is_set()  # read before claiming: then an empty claim is final
            with engine.begin() as conn:
                batch = claim_batch(conn, store, limit=20)
                delete_entries(conn, batch)
            tailed.extend(
                (e.event.restaurant_id, e.event.seq, e.event.data["token"])
                for e in batch
                if e.event.restaurant_id in restaurants
            )
            if not batch:
                if finished:
                    return
                time.sleep(0.002)

    def snapshot_reader() -> None:
        """Seq order is commit order: every snapshot of a restaurant is a prefix 1..k."""
        seen = dict.fromkeys(restaurants, 0)
        while True:
            finished = writers_done.is_set()
            for restaurant in restaurants:
                events = store.read_restaurant(restaurant, limit=100_000)
                seqs = [e.seq for e in events]
                if seqs != list(range(1, len(seqs) + 1)):
                    snapshot_problems.append(f"{restaurant}: hole in {seqs}")
                if len(seqs) < seen[restaurant]:
                    snapshot_problems.append(f"{restaurant}: went back to {len(seqs)}")
                seen[restaurant] = len(seqs)
                snapshot_tokens.update(e.data["token"] for e in events)
            snapshots[0] += 1
            if finished:
                return

    with ThreadPoolExecutor(max_workers=2) as readers:
        tail = readers.submit(tailer)
        snap = readers.submit(snapshot_reader)
        try:
            run_threads(writers, writer)
        finally:
            writers_done.set()
        tail.result(timeout=60)
        snap.result(timeout=60)

    committed_tokens = [t for c in committed for t in c.tokens]
    assert committed_tokens  # both outcomes were exercised
    assert rolled_back
    assert len(set(committed_tokens)) == len(committed_tokens)

    # The relay saw every committed event exactly once and no rolled-back one.
    counts = Counter(token for _, _, token in tailed)
    assert {t: n for t, n in counts.items() if n != 1} == {}
    assert set(counts) == set(committed_tokens)
    assert not set(counts) & rolled_back
    assert not snapshot_tokens & rolled_back
    assert snapshot_problems == []
    assert snapshots[0] >= 2

    expected_at: dict[tuple[str, int], str] = {}
    for c in committed:
        for seq, token in zip(range(c.first_seq, c.last_seq + 1), c.tokens, strict=True):
            expected_at[(c.restaurant_id, seq)] = token
    assert {(r, s): t for r, s, t in tailed} == expected_at

    for restaurant in restaurants:
        events = store.read_restaurant(restaurant, limit=100_000)
        mine = [c for c in committed if c.restaurant_id == restaurant]
        total = sum(len(c.tokens) for c in mine)
        # Seqs are exactly 1..N: rolled-back appends took seqs but left no hole.
        assert [e.seq for e in events] == list(range(1, total + 1))
        assert store.head(restaurant) == total
        assert [e.data["token"] for e in events] == [
            expected_at[(restaurant, seq)] for seq in range(1, total + 1)
        ]
        # Versions per stream are contiguous, in the order its writer committed them.
        by_stream: dict[str, list[int]] = defaultdict(list)
        for e in events:
            by_stream[e.stream_id].append(e.version)
        for versions in by_stream.values():
            assert versions == list(range(1, len(versions) + 1))

        # Seq order is commit order. We cannot observe commit instants directly, and
        # `recorded_at` is no witness: the store reads its clock before it waits for the
        # restaurant's sequence lock, so an append that queued behind another can carry an
        # earlier timestamp and a later seq. What is sound is real-time order: if append A
        # returned (so had committed) before append B was even called, B's transaction took
        # the sequence row after A's commit, so every seq of A must precede every seq of B.
        # (The snapshot reader above checks the converse view: no reader ever sees a later
        # seq without all earlier ones.)
        mine.sort(key=lambda c: c.returned)
        for a in mine:
            for b in mine:
                if a.returned < b.started:
                    assert a.last_seq < b.first_seq, (a, b)


def test_racing_first_appends_of_a_restaurant_survive_the_first_one_rolling_back(
    engine: Engine,
) -> None:
    """A new restaurant's first appends race, and the one that gets there first rolls back.

    Creating the restaurant's sequence row inside the append transaction deadlocks here on
    InnoDB (the waiters on a rolled-back insert hold gap locks, then all need to insert).
    """
    threads, rounds = 12, 4
    store = EventStore(engine, registry)
    for _ in range(rounds):
        restaurant = new_id()
        start = threading.Barrier(threads)
        first = threading.Lock()
        doomed_ones: list[int] = []

        def attempt(
            i: int,
            restaurant: str = restaurant,
            start: threading.Barrier = start,
            first: threading.Lock = first,
            doomed_ones: list[int] = doomed_ones,
        ) -> bool:
            def respond(result: AppendResult) -> StoredResponse:
                if first.acquire(blocking=False):  # only the first to get here
                    doomed_ones.append(i)
                    time.sleep(0.05)  # let the others queue up behind our locks
                    raise Boom
                return StoredResponse(201, {})

            ref = StreamRef(restaurant, "order", new_id())
            claim = IdempotencyClaim(new_id(), "h", respond)
            start.wait()
            try:
                store.append(ref, 0, [Ticked(token=str(i))], idempotency=claim)
            except Boom:
                return False
            return True

        outcomes = run_threads(threads, attempt)

        assert outcomes.count(False) == len(doomed_ones) == 1
        events = store.read_restaurant(restaurant)
        assert [e.seq for e in events] == list(range(1, threads))
        assert str(doomed_ones[0]) not in {e.data["token"] for e in events}
        assert store.head(restaurant) == threads - 1


# -- (3) one idempotency key, many concurrent requests ---------------------------------------


@pytest.mark.parametrize("target", ["same-stream", "new-stream-each"])
def test_one_idempotency_key_records_one_outcome(engine: Engine, target: str) -> None:
    """100 retries of one request race: one appends, all answer with its response.

    `same-stream` is a retried command on one aggregate; `new-stream-each` is a retried
    create, where every attempt generated its own new stream id.
    """
    threads = 100
    store = EventStore(engine, registry)
    restaurant, shared_stream = new_id(), new_id()
    start = threading.Barrier(threads)

    def respond(result: AppendResult) -> StoredResponse:
        body = {
            "stream_id": result.stream_id,
            "version": result.version,
            "position": result.position,
        }
        return StoredResponse(201, body)

    def attempt(i: int) -> AppendResult:
        stream_id = shared_stream if target == "same-stream" else new_id()
        ref = StreamRef(restaurant, "order", stream_id)
        events = [Ticked(token=f"{i}.a"), Ticked(token=f"{i}.b")]
        start.wait()
        return store.append(ref, 0, events, idempotency=IdempotencyClaim("retry", "h", respond))

    results = run_threads(threads, attempt)

    originals = [r for r in results if not r.replayed]
    assert len(originals) == 1
    (original,) = originals
    assert original.response is not None
    assert {r.stream_id for r in results} == {original.stream_id}
    assert all(r.response == original.response for r in results)
    assert original.response.body == {"stream_id": original.stream_id, "version": 2, "position": 2}

    events = store.read_restaurant(restaurant)
    assert {e.stream_id for e in events} == {original.stream_id}
    assert [(e.version, e.seq) for e in events] == [(1, 1), (2, 2)]
    assert len({e.data["token"].split(".")[0] for e in events}) == 1
    assert store.head(restaurant) == 2
    with engine.connect() as conn:
        keys = conn.execute(
            select(func.count()).where(idempotency_keys.c.restaurant_id == restaurant)
        ).scalar_one()
    assert keys == 1


def test_racing_retries_of_an_expired_key_record_one_new_outcome(engine: Engine) -> None:
    """A key recorded more than 24 h ago: the racing requests that reuse it append once, and
    every one answers with that new append's response."""
    threads = 30
    restaurant = new_id()
    recorded_at = datetime(2014, 8, 8, 8, 0, tzinfo=UTC)
    old = EventStore(engine, registry, clock=lambda: recorded_at)
    claim = IdempotencyClaim("reused", "h", lambda r: StoredResponse(201, {"id": r.stream_id}))
    old.append(
        StreamRef(restaurant, "order", new_id()), 0, [Ticked(token="old")], idempotency=claim
    )
    store = EventStore(engine, registry, clock=lambda: recorded_at + timedelta(hours=25))
    start = threading.Barrier(threads)

    def attempt(i: int) -> AppendResult:
        ref = StreamRef(restaurant, "order", new_id())
        start.wait()
        return store.append(ref, 0, [Ticked(token=str(i))], idempotency=claim)

    results = run_threads(threads, attempt)

    originals = [r for r in results if not r.replayed]
    assert len(originals) == 1
    assert {r.stream_id for r in results} == {originals[0].stream_id}
    assert [e.seq for e in store.read_restaurant(restaurant)] == [1, 2]
    assert store.head(restaurant) == 2
