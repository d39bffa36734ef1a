"""Rate limits, with the `limits` library (sliding-window counters).

Three scopes:

- ``caller``: every authenticated request, per principal (a person or a POS key), at
  ``RATE_LIMIT_PER_MINUTE``;
- ``orders``: order creation on top of that, per principal, at ``ORDER_RATE_LIMIT``;
- ``auth``: per client IP, at ``AUTH_RATE_LIMIT``: every signup and token request, and every
  request turned away for bad credentials (so API keys and passwords cannot be guessed at
  the speed of the network).

The client IP is the peer address; uvicorn rewrites it from ``X-Forwarded-For`` only when
the peer is one of ``TRUSTED_PROXIES`` (``coffeeshop serve`` passes them on), so a client
cannot choose its own IP. Counters live in Redis when ``REDIS_URL`` is set, shared by every
API process and instance; in memory otherwise (the embedded default is one process).

Redis unreachable: the request goes through. The event store is the truth, and a till must
keep taking orders when the cache is gone. Each such request counts in
``coffeeshop_rate_limit_errors_total``, and a warning is logged at most once a minute.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string
from prometheus_client import Counter

from coffeeshop.api.errors import AppError
from coffeeshop.api.settings import Settings

log = logging.getLogger("coffeeshop.ratelimit")

REJECTED = Counter(
    "coffeeshop_rate_limit_rejections",
    "Requests answered 429, by scope (caller, orders, auth)",
    ["scope"],
)
STORAGE_ERRORS = Counter(
    "coffeeshop_rate_limit_errors",
    "Requests let through unchecked because the rate-limit storage (Redis) failed",
)
REDIS_TIMEOUT_S = 0.2  # a slow Redis must not slow every request down
WARN_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Quota:
    limit: int
    remaining: int
    reset_after: float  # seconds until the window has room again

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": str(math.ceil(self.reset_after)),
        }


class TooManyRequests(AppError):
    status, slug = 429, "rate-limited"

    def __init__(self, scope: str, quota: Quota) -> None:
        retry = max(1, math.ceil(quota.reset_after))
        super().__init__(
            f"Too many requests ({scope}: {quota.limit} per minute); retry in {retry} s",
            headers={"Retry-After": str(retry), **quota.headers()},
        )


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limit_enabled
        self.items: dict[str, RateLimitItem] = {
            "caller": RateLimitItemPerMinute(settings.rate_limit_per_minute),
            "orders": RateLimitItemPerMinute(settings.order_rate_limit),
            "auth": RateLimitItemPerMinute(settings.auth_rate_limit),
        }
        # The async storages: counting runs on the event loop, with no thread-pool trip.
        if settings.redis_url:
            storage = storage_from_string(
                f"async+{settings.redis_url}",
                implementation="redispy",  # redis-py, as everywhere else (not coredis)
                socket_timeout=REDIS_TIMEOUT_S,
                socket_connect_timeout=REDIS_TIMEOUT_S,
            )
        else:
            storage = storage_from_string("async+memory://")
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self._warned_at = -math.inf
        self._lock = threading.Lock()

    async def hit(self, scope: str, key: str) -> Quota | None:
        """Count one request of ``key`` in ``scope``; raises TooManyRequests when over. None
        when limits are off or the storage failed (the request goes through)."""
        if not self.enabled:
            return None
        item = self.items[scope]
        try:
            allowed = await self._strategy.hit(item, scope, key)
            stats = await self._strategy.get_window_stats(item, scope, key)
        except Exception:
            self._storage_failed()
            return None
        quota = Quota(item.amount, stats.remaining, max(0.0, stats.reset_time - time.time()))
        if not allowed:
            REJECTED.labels(scope).inc()
            raise TooManyRequests(scope, quota)
        return quota

    def _storage_failed(self) -> None:
        STORAGE_ERRORS.inc()
        with self._lock:
            now = time.monotonic()
            if now - self._warned_at < WARN_EVERY_S:
                return
            self._warned_at = now
        log.warning("rate-limit storage unreachable; letting requests through", exc_info=True)
