"""Everything the app builds once and hands to routes, workers and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import redis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import Engine

from coffeeshop.api.db import make_engine
from coffeeshop.api.identity.credentials import PasswordHasher, TokenIssuer
from coffeeshop.api.identity.key_cache import ApiKeyCache
from coffeeshop.api.identity.service import IdentityService
from coffeeshop.api.ratelimit import RateLimiter
from coffeeshop.api.report_tasks import ReportTasks, no_bell, redis_bell
from coffeeshop.api.settings import Settings
from coffeeshop.commands.handling import CommandExecutor
from coffeeshop.commands.menu_handlers import MenuCommands
from coffeeshop.commands.order_handlers import OrderCommands
from coffeeshop.events.clock import Clock, utc_now
from coffeeshop.events.registry import registry
from coffeeshop.events.store import EventStore
from coffeeshop.queries.cache import Cache, MemoryCache, RedisCache

CACHE_SOCKET_TIMEOUT_S = 0.2


@dataclass
class Container:
    settings: Settings
    engine: Engine
    store: EventStore
    tokens: TokenIssuer
    identity: IdentityService
    menu: MenuCommands
    orders: OrderCommands
    redis: Redis | None
    clock: Clock
    cache: Cache
    reads: Engine
    """The engine queries use: the same pool, each statement its own transaction on MySQL.
    A query then never holds one table's metadata lock while waiting for another's, so the
    RENAME that swaps a rebuilt projection in cannot deadlock with it (it waits for the
    statement in flight; the next one waits a few milliseconds for the rename)."""
    limiter: RateLimiter
    report_tasks: ReportTasks
    report_bell: Callable[[str], None]

    def close(self) -> None:
        self.cache.close()
        self.engine.dispose()
        if self.reads is not self.engine:
            self.reads.dispose()

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        if isinstance(self.cache, RedisCache):
            await self.cache.aclose()
        self.close()


def build_container(settings: Settings, clock: Clock = utc_now) -> Container:
    engine = make_engine(settings)
    store = EventStore(engine, registry, clock)
    tokens = TokenIssuer(
        settings.secret_key.get_secret_value(),
        timedelta(minutes=settings.access_token_expire_minutes),
    )
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    key_cache = (
        ApiKeyCache(_async_redis(settings.redis_url), _sync_redis(settings.redis_url))
        if settings.redis_url
        else None
    )
    identity = IdentityService(engine, store, PasswordHasher(), clock, key_cache)
    executor = CommandExecutor(store, clock)
    return Container(
        settings=settings,
        engine=engine,
        store=store,
        tokens=tokens,
        identity=identity,
        menu=MenuCommands(executor),
        orders=OrderCommands(executor, identity.table_exists),
        redis=redis,
        clock=clock,
        cache=_build_cache(settings),
        reads=read_engine(settings, engine),
        limiter=RateLimiter(settings),
        report_tasks=ReportTasks(engine, clock, identity.timezone_of),
        report_bell=redis_bell(settings.redis_url) if settings.redis_url else no_bell,
    )


def read_engine(settings: Settings, engine: Engine) -> Engine:
    """A pool of its own whose connections are autocommit from the start, so a query's
    checkout costs no round trips to set and reset the isolation level."""
    if engine.dialect.name == "sqlite":
        return engine  # readers see a snapshot in WAL mode; the swap is one transaction
    return make_engine(settings, engine.url.render_as_string(hide_password=False), autocommit=True)


def _build_cache(settings: Settings) -> Cache:
    """Redis when configured (a slow or absent Redis must not slow reads: short timeouts,
    no retries, and the cache fails open); an in-process LRU in embedded mode."""
    if settings.redis_url is None:
        return MemoryCache()
    url = settings.redis_url
    return RedisCache(_sync_redis(url), async_client=_async_redis(url))


def _async_redis(url: str) -> Redis:
    """The same, for reads on the event loop."""
    return Redis.from_url(
        url,
        socket_timeout=CACHE_SOCKET_TIMEOUT_S,
        socket_connect_timeout=CACHE_SOCKET_TIMEOUT_S,
        retry=AsyncRetry(NoBackoff(), 0),
    )


def _sync_redis(url: str) -> redis.Redis:
    """For reads on the request path: short timeouts and no retries, since every user of
    it has an answer without Redis (the menu from MySQL, the API key from MySQL)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=CACHE_SOCKET_TIMEOUT_S,
        socket_connect_timeout=CACHE_SOCKET_TIMEOUT_S,
        retry=Retry(NoBackoff(), 0),
    )
