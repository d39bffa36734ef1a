"""A small byte cache for read models: Redis in production, a bounded dict when embedded.

The cache is an accelerator, never a source of truth: keys carry whatever makes a value
current (the menu generation), values expire after a TTL, and a cache that misbehaves
behaves as a miss, so queries fall back to the read tables.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

log = logging.getLogger("coffeeshop.cache")


class Cache(Protocol):
    def get(self, key: str) -> bytes | None: ...

    async def aget(self, key: str) -> bytes | None:
        """``get`` for the event loop: a hit costs no thread."""
        ...

    def set(self, key: str, value: bytes, ttl_s: int) -> None: ...

    def add(self, key: str, value: bytes, ttl_s: int) -> None:
        """``set``, unless the key holds a value already."""
        ...

    def close(self) -> None: ...


class RedisCache:
    """A cache over a synchronous Redis client that fails open.

    Any Redis error is logged as a warning and treated as a miss (``get``) or ignored
    (``set``). After an error the cache stays out of the way for ``pause_s`` seconds, so an
    outage costs each request nothing rather than a connect timeout.
    """

    def __init__(
        self,
        client: Redis,
        prefix: str = "coffeeshop:cache:",
        pause_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        async_client: AsyncRedis | None = None,
    ) -> None:
        """``async_client`` serves ``aget``; without one, ``aget`` is always a miss."""
        self._client = client
        self._async_client = async_client
        self._prefix = prefix
        self._pause_s = pause_s
        self._monotonic = monotonic
        self._paused_until = 0.0

    def get(self, key: str) -> bytes | None:
        if self._paused():
            return None
        try:
            value: Any = self._client.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
            return None
        return _as_bytes(value)

    async def aget(self, key: str) -> bytes | None:
        if self._async_client is None or self._paused():
            return None
        try:
            value: Any = await self._async_client.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            self._failed("get", exc)
            return None
        return _as_bytes(value)

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self._set(key, value, ttl_s, only_new=False)

    def add(self, key: str, value: bytes, ttl_s: int) -> None:
        self._set(key, value, ttl_s, only_new=True)

    def _set(self, key: str, value: bytes, ttl_s: int, *, only_new: bool) -> None:
        if self._paused():
            return
        try:
            self._client.set(self._prefix + key, value, ex=max(1, int(ttl_s)), nx=only_new)
        except (RedisError, OSError) as exc:
            self._failed("set", exc)

    def close(self) -> None:
        try:
            self._client.close()
        except (RedisError, OSError) as exc:  # pragma: no cover - closing a broken client
            log.warning("closing the Redis cache client failed: %r", exc)

    async def aclose(self) -> None:
        if self._async_client is not None:
            await self._async_client.aclose()

    def _paused(self) -> bool:
        return self._monotonic() < self._paused_until

    def _failed(self, operation: str, exc: BaseException) -> None:
        self._paused_until = self._monotonic() + self._pause_s
        log.warning(
            "cache %s failed, reading from the tables for %.1f s: %r",
            operation,
            self._pause_s,
            exc,
        )


class MemoryCache:
    """A bounded LRU with per-entry TTL, for embedded mode (one process, thread-safe)."""

    def __init__(
        self, max_entries: int = 1024, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, value = entry
            if self._monotonic() >= expires:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return value

    async def aget(self, key: str) -> bytes | None:
        return self.get(key)  # a dict lookup under a lock held for microseconds

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        with self._lock:
            self._put(key, value, ttl_s)

    def add(self, key: str, value: bytes, ttl_s: int) -> None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or self._monotonic() >= entry[0]:
                self._put(key, value, ttl_s)

    def _put(self, key: str, value: bytes, ttl_s: int) -> None:
        self._entries[key] = (self._monotonic() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def close(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _as_bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    return bytes(value) if not isinstance(value, bytes) else value
