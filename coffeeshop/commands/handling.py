"""The command pipeline shared by every handler: load, decide, append, retry, idempotency.

A handler supplies ``attempt``: a function that loads the aggregates it needs from their
streams and returns a Decision. On a concurrency conflict the attempt runs again with fresh
state unless the caller pinned a version with If-Match. After a few lost races it runs once
more holding the restaurant's append lock, where no other writer can overtake it: a stream
that others keep moving (a category gaining items, a popular menu item) cannot starve a
command into a 409.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

from coffeeshop.commands.errors import DomainError, VersionMismatch
from coffeeshop.commands.metrics import COMMANDS
from coffeeshop.events.clock import Clock
from coffeeshop.events.envelope import (
    AppendResult,
    EventMetadata,
    RecordedEvent,
    StoredResponse,
    StreamRef,
    StreamWrite,
)
from coffeeshop.events.errors import ConcurrencyError
from coffeeshop.events.idempotency import IdempotencyClaim
from coffeeshop.events.registry import DomainEvent, registry
from coffeeshop.events.store import EventStore

S = TypeVar("S")
Streams = dict[str, list[RecordedEvent]]
OPTIMISTIC_ATTEMPTS = 3
RETRY_PAUSE_S = 0.005
RETRY_PAUSE_MAX_S = 0.05

_locked: ContextVar[Connection | None] = ContextVar("locked_append_connection", default=None)
"""The serialized attempt's connection: its loads and its append run in that transaction."""


@dataclass(frozen=True)
class CommandContext:
    """Who sent the command and how: the tenant every load and append is scoped to."""

    restaurant_id: str
    actor: str
    request_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    if_match: int | None = None


@dataclass(frozen=True)
class Loaded(Generic[S]):
    state: S
    version: int
    last_seq: int


@dataclass(frozen=True)
class Decision:
    """What an attempt decided: the primary aggregate's id and every stream write."""

    aggregate_id: str
    primary: StreamWrite
    others: Sequence[StreamWrite] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    current_seq: int = 0  # the primary's last seq, reported when nothing is appended


@dataclass(frozen=True)
class CommandResult:
    status_code: int
    body: dict[str, Any]
    replayed: bool = False

    @property
    def version(self) -> int:
        return int(self.body["version"])


def request_fingerprint(method: str, path: str, body: Any) -> str:
    """Identifies a request for idempotency: same key and fingerprint means same request."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class CommandExecutor:
    def __init__(
        self, store: EventStore, clock: Clock, optimistic_attempts: int = OPTIMISTIC_ATTEMPTS
    ) -> None:
        self.store = store
        self.clock = clock
        self._optimistic_attempts = optimistic_attempts

    def load(
        self,
        ctx: CommandContext,
        stream_id: str,
        initial: S,
        evolve: Callable[[S, DomainEvent], S],
    ) -> Loaded[S]:
        recorded = self.store.load_stream(ctx.restaurant_id, stream_id, conn=_locked.get())
        return fold(recorded, initial, evolve)

    def streams(self, ctx: CommandContext, stream_ids: Iterable[str]) -> Streams:
        """Several aggregates' events in one read, for a decision that needs them all."""
        return self.store.load_streams(ctx.restaurant_id, stream_ids, conn=_locked.get())

    def expect(self, ctx: CommandContext, loaded: Loaded[Any]) -> int:
        """The version to append at: the loaded one, which must match If-Match when given."""
        if ctx.if_match is not None and ctx.if_match != loaded.version:
            raise VersionMismatch(ctx.if_match, loaded.version)
        return loaded.version

    def run(
        self,
        ctx: CommandContext,
        attempt: Callable[[], Decision],
        *,
        creates: bool = False,
        command: str | None = None,
    ) -> CommandResult:
        """Decide and append (retrying on conflicts), counted by ``command`` (default: the
        method that made ``attempt``, e.g. ``OrderCommands.place``) and outcome."""
        command = command or _command_name(attempt)
        try:
            result = self._run(ctx, attempt, creates)
        except (VersionMismatch, ConcurrencyError):
            COMMANDS.labels(command, "conflict").inc()
            raise
        except DomainError:
            COMMANDS.labels(command, "rejected").inc()
            raise
        except Exception:
            COMMANDS.labels(command, "error").inc()
            raise
        COMMANDS.labels(command, "replayed" if result.replayed else "ok").inc()
        return result

    def _run(
        self, ctx: CommandContext, attempt: Callable[[], Decision], creates: bool
    ) -> CommandResult:
        status_code = 201 if creates else 200
        for tries in range(self._optimistic_attempts):
            try:
                return self._once(ctx, attempt, status_code)
            except ConcurrencyError:
                # Another stream moved (or no version was pinned): decide again on fresh
                # state after a random pause that doubles each time (capped), so writers
                # contending for a busy aggregate spread out.
                pause = min(RETRY_PAUSE_MAX_S, RETRY_PAUSE_S * 2**tries)
                time.sleep(random.uniform(0, pause))  # noqa: S311
        # Still losing: decide once more while no one else can append to the restaurant.
        with self.store.serialized(ctx.restaurant_id) as conn:
            token = _locked.set(conn)
            try:
                return self._once(ctx, attempt, status_code)
            finally:
                _locked.reset(token)

    def _once(
        self, ctx: CommandContext, attempt: Callable[[], Decision], status_code: int
    ) -> CommandResult:
        """One attempt: decide, then append. An Idempotency-Key is claimed by the append,
        which replays a recorded response; an attempt that decides differently now (the
        order was paid since, the If-Match version moved on) or appends nothing looks the
        key up instead."""
        try:
            decision = attempt()
        except DomainError:
            if (recorded := self._recorded(ctx)) is not None:
                return recorded
            raise
        if not decision.primary.events and not any(w.events for w in decision.others):
            recorded = self._recorded(ctx)
            return recorded or CommandResult(
                status_code,
                _body(decision, decision.primary.expected_version, decision.current_seq),
            )
        try:
            result = self._append(ctx, decision, status_code)
        except ConcurrencyError as conflict:
            pinned = conflict.stream_id == decision.primary.stream.stream_id
            if ctx.if_match is not None and pinned:
                raise VersionMismatch(ctx.if_match, conflict.current_version) from conflict
            raise
        assert result.response is not None
        return CommandResult(result.response.status_code, result.response.body, result.replayed)

    def _recorded(self, ctx: CommandContext) -> CommandResult | None:
        """The response recorded under the request's Idempotency-Key, if any."""
        if ctx.idempotency_key is None:
            return None
        prior = self.store.idempotent_response(
            ctx.restaurant_id, ctx.idempotency_key, ctx.request_hash or ""
        )
        if prior is None or prior.response is None:
            return None
        return CommandResult(prior.response.status_code, prior.response.body, True)

    def _append(self, ctx: CommandContext, decision: Decision, status_code: int) -> AppendResult:
        def respond(result: AppendResult) -> StoredResponse:
            version = decision.primary.expected_version + len(decision.primary.events)
            return StoredResponse(status_code, _body(decision, version, result.position))

        claim = None
        if ctx.idempotency_key is not None:
            claim = IdempotencyClaim(ctx.idempotency_key, ctx.request_hash or "", respond)
        metadata = EventMetadata(
            correlation_id=ctx.request_id,
            causation_id=ctx.request_id,
            request_id=ctx.request_id,
            actor=ctx.actor,
            idempotency_key=ctx.idempotency_key,
        )
        writes = [decision.primary, *decision.others]
        result = self.store.append_many(writes, metadata, claim, conn=_locked.get())
        if result.response is None:
            return AppendResult(
                result.stream_id, result.version, result.position, respond(result), result.replayed
            )
        return result


def fold(
    recorded: Iterable[RecordedEvent], initial: S, evolve: Callable[[S, DomainEvent], S]
) -> Loaded[S]:
    """An aggregate's state from its stream's events."""
    state, version, last_seq = initial, 0, 0
    for event in recorded:
        state = evolve(state, event.decode(registry))
        version, last_seq = event.version, event.seq
    return Loaded(state, version, last_seq)


def _command_name(attempt: Callable[[], Decision]) -> str:
    """``OrderCommands.place`` for the closure a command method hands to ``run``."""
    return getattr(attempt, "__qualname__", "unknown").split(".<locals>")[0]


def stream(ctx: CommandContext, stream_type: str, stream_id: str) -> StreamRef:
    return StreamRef(ctx.restaurant_id, stream_type, stream_id)


def _body(decision: Decision, version: int, position: int) -> dict[str, Any]:
    return {"id": decision.aggregate_id, "version": version, "position": position, **decision.extra}
