"""API key -> Principal, remembered per API process, forgotten everywhere on a revocation.

Every POS request authenticates with its key. Looking the key up costs a database round
trip or more per request; the cache answers from memory instead. Revocation must still take
effect at once in every API process, so each lookup reads one *revocation token* from Redis
(one cheap GET): a revocation writes a new random token after its commit, and an entry is
valid only under the token that was current when it was loaded. A random token, not a
counter: a flushed Redis that counts again from 1 could repeat an old value.

When Redis cannot be read, the cache steps aside and every lookup goes to the database, so
an outage never lets a revoked key through.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from anyio import to_thread
from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from coffeeshop.api.identity.principal import Principal

REVOCATION_KEY = "coffeeshop:api-keys:revocation"
log = logging.getLogger("coffeeshop.identity")


class RevocationNotBroadcast(Exception):
    """The revocation is committed, but the other API processes could not be told."""


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    token: bytes | str | None  # the revocation token it was loaded under
    expires: float


class ApiKeyCache:
    """A bounded LRU of key hash -> Principal, checked against the revocation token.

    ``ttl_s`` bounds how long an entry lives even when nothing is revoked (a key's row could
    change by hand in the database); misses (unknown keys) are never cached.
    """

    def __init__(
        self,
        reader: AsyncRedis,
        writer: Redis,
        capacity: int = 10_000,
        ttl_s: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``reader`` serves lookups on the event loop (a hit costs no thread-pool trip);
        ``writer`` publishes revocations from the synchronous identity service."""
        self._reader = reader
        self._writer = writer
        self._capacity = capacity
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    async def lookup(
        self, key_hash: str, load: Callable[[str], Principal | None]
    ) -> Principal | None:
        """The principal for ``key_hash``, from memory while valid, else from ``load`` (run
        in the thread pool: it queries the database)."""
        try:
            token = await self._reader.get(REVOCATION_KEY)
        except (RedisError, OSError):
            # Cannot tell whether a revocation happened: ask the database.
            return await to_thread.run_sync(load, key_hash)
        now = self._monotonic()
        with self._lock:
            entry = self._entries.get(key_hash)
            if entry is not None and entry.token == token and entry.expires > now:
                self._entries.move_to_end(key_hash)
                return entry.principal
        principal = await to_thread.run_sync(load, key_hash)
        if principal is not None:
            with self._lock:
                self._entries[key_hash] = _Entry(principal, token, now + self._ttl_s)
                self._entries.move_to_end(key_hash)
                while len(self._entries) > self._capacity:
                    self._entries.popitem(last=False)
        return principal

    def revoked(self) -> None:
        """Call after a revocation commits: every process's entries become invalid."""
        with self._lock:
            self._entries.clear()
        try:
            self._writer.set(REVOCATION_KEY, uuid.uuid4().hex)
        except (RedisError, OSError) as exc:
            log.error("could not publish an API key revocation to the other processes")
            raise RevocationNotBroadcast from exc

    def __len__(self) -> int:
        return len(self._entries)
