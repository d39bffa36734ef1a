"""Everything the app builds once and hands to routes, workers and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy import Engine

from coffeeshop.api.db import make_engine
from coffeeshop.api.identity.credentials import PasswordHasher, TokenIssuer
from coffeeshop.api.identity.service import IdentityService
from coffeeshop.api.settings import Settings
from coffeeshop.commands.handling import CommandExecutor
from coffeeshop.commands.menu_handlers import MenuCommands
from coffeeshop.commands.order_handlers import OrderCommands
from coffeeshop.events.clock import Clock, utc_now
from coffeeshop.events.registry import registry
from coffeeshop.events.store import EventStore


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

    def close(self) -> None:
        self.engine.dispose()

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
        self.close()


def build_container(settings: Settings, clock: Clock = utc_now) -> Container:
    engine = make_engine(settings)
    store = EventStore(engine, registry, clock)
    tokens = TokenIssuer(
        settings.secret_key.get_secret_value(),
        timedelta(minutes=settings.access_token_expire_minutes),
    )
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    identity = IdentityService(engine, store, PasswordHasher(), clock)
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
    )
