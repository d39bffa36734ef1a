"""Identity use cases over the relational identity tables.

Every function that touches tenant data takes the caller's Principal and filters by its
restaurant, so another restaurant's rows are simply not found.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from anyio import to_thread
from sqlalchemy import Engine, Row, Select, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from coffeeshop.api.errors import Conflict, ResourceNotFound, ServiceUnavailable, Unprocessable
from coffeeshop.api.identity import schemas
from coffeeshop.api.identity.credentials import PasswordHasher, api_key_hash, new_api_key
from coffeeshop.api.identity.key_cache import ApiKeyCache, RevocationNotBroadcast
from coffeeshop.api.identity.principal import Principal
from coffeeshop.api.identity.roles import Role
from coffeeshop.api.identity.tables import api_keys, dining_tables, restaurants, users
from coffeeshop.events.clock import Clock, as_utc, naive_utc
from coffeeshop.events.store import EventStore
from coffeeshop.queries.pagination import Page, PageRequest, build_page


class IdentityService:
    def __init__(
        self,
        engine: Engine,
        store: EventStore,
        hasher: PasswordHasher,
        clock: Clock,
        key_cache: ApiKeyCache | None = None,
    ) -> None:
        self._engine = engine
        self._store = store
        self._hasher = hasher
        self._clock = clock
        self._timezones: dict[str, str] = {}
        self._key_cache = key_cache

    def warm(self) -> None:
        """Pay the password hasher's one-off cost now, not in the first login's response."""
        self._hasher.warm()

    # -- restaurants and people ------------------------------------------------------------

    def signup(self, body: schemas.SignupCreate) -> schemas.SignupPublic:
        restaurant_id, user_id = str(uuid.uuid4()), str(uuid.uuid4())
        now = naive_utc(self._clock())
        password_hash = self._hasher.hash(body.password)
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(restaurants).values(
                        id=restaurant_id,
                        name=body.restaurant_name,
                        timezone=body.timezone,
                        currency=body.currency,
                        created_at=now,
                    )
                )
                conn.execute(
                    insert(users).values(
                        id=user_id,
                        restaurant_id=restaurant_id,
                        email=_normal_email(body.email),
                        password_hash=password_hash,
                        role=Role.OWNER.value,
                        is_active=True,
                        created_at=now,
                    )
                )
                self._store.ensure_restaurant(conn, restaurant_id)
        except IntegrityError as exc:
            raise Conflict("An account with this email already exists") from exc
        return schemas.SignupPublic(restaurant_id=restaurant_id, user_id=user_id)

    def authenticate(self, email: str, password: str) -> Principal | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.email == _normal_email(email))).first()
        stored_hash = row.password_hash if row is not None and row.is_active else None
        if not self._hasher.verify(password, stored_hash) or row is None:
            return None
        return Principal(restaurant_id=row.restaurant_id, role=Role(row.role), user_id=row.id)

    def create_user(self, caller: Principal, body: schemas.UserCreate) -> schemas.UserPublic:
        user_id = str(uuid.uuid4())
        now = naive_utc(self._clock())
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(users).values(
                        id=user_id,
                        restaurant_id=caller.restaurant_id,
                        email=_normal_email(body.email),
                        password_hash=self._hasher.hash(body.password),
                        role=body.role.value,
                        is_active=True,
                        created_at=now,
                    )
                )
        except IntegrityError as exc:
            raise Conflict("An account with this email already exists") from exc
        return schemas.UserPublic(
            id=user_id,
            email=_normal_email(body.email),
            role=body.role,
            is_active=True,
            created_at=as_utc(now),
        )

    def list_users(self, caller: Principal, page: PageRequest) -> Page[schemas.UserPublic]:
        query = select(users).where(users.c.restaurant_id == caller.restaurant_id)
        return self._page(query, users.c, page, _user_public)

    # -- POS API keys ----------------------------------------------------------------------

    def create_api_key(
        self, caller: Principal, body: schemas.ApiKeyCreate
    ) -> schemas.ApiKeyCreated:
        key, key_id = new_api_key(), str(uuid.uuid4())
        now = naive_utc(self._clock())
        with self._engine.begin() as conn:
            conn.execute(
                insert(api_keys).values(
                    id=key_id,
                    restaurant_id=caller.restaurant_id,
                    name=body.name,
                    prefix=key[:10],
                    key_hash=api_key_hash(key),
                    role=Role.POS.value,
                    created_by=caller.user_id,
                    created_at=now,
                )
            )
        return schemas.ApiKeyCreated(
            id=key_id,
            name=body.name,
            prefix=key[:10],
            role=Role.POS,
            created_at=as_utc(now),
            revoked_at=None,
            key=key,
        )

    def list_api_keys(self, caller: Principal, page: PageRequest) -> Page[schemas.ApiKeyPublic]:
        query = select(api_keys).where(api_keys.c.restaurant_id == caller.restaurant_id)
        return self._page(query, api_keys.c, page, _api_key_public)

    def revoke_api_key(self, caller: Principal, key_id: str) -> None:
        """Revoke at once, in every API process; revoking a revoked key is a no-op (but tells
        the processes again, so retrying a revocation that could not be told helps), another
        tenant's key is 404."""
        mine = (api_keys.c.id == key_id) & (api_keys.c.restaurant_id == caller.restaurant_id)
        with self._engine.begin() as conn:
            revoked = conn.execute(
                update(api_keys)
                .where(mine, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=naive_utc(self._clock()))
            ).rowcount
            if not revoked and conn.execute(select(api_keys.c.id).where(mine)).first() is None:
                raise ResourceNotFound("API key not found")
        if self._key_cache is not None:
            try:
                self._key_cache.revoked()
            except RevocationNotBroadcast as exc:
                raise ServiceUnavailable(
                    "The key is revoked, but not every API process could be told yet "
                    "(Redis unreachable); repeat the request"
                ) from exc

    async def principal_for_api_key(self, key: str) -> Principal | None:
        """Async: with the key cache, a known key is answered on the event loop."""
        if self._key_cache is None:
            return await to_thread.run_sync(self._load_principal, api_key_hash(key))
        return await self._key_cache.lookup(api_key_hash(key), self._load_principal)

    def _load_principal(self, key_hash: str) -> Principal | None:
        with self._engine.connect() as conn:
            row = conn.execute(
                select(api_keys.c.id, api_keys.c.restaurant_id, api_keys.c.role).where(
                    api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None)
                )
            ).first()
        if row is None:
            return None
        return Principal(restaurant_id=row.restaurant_id, role=Role(row.role), api_key_id=row.id)

    # -- dining tables ---------------------------------------------------------------------

    def create_table(self, caller: Principal, body: schemas.TableCreate) -> schemas.TablePublic:
        table_id = str(uuid.uuid4())
        now = naive_utc(self._clock())
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(dining_tables).values(
                        id=table_id,
                        restaurant_id=caller.restaurant_id,
                        label=body.label,
                        seats=body.seats,
                        created_at=now,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"A table labelled {body.label!r} already exists") from exc
        return schemas.TablePublic(
            id=table_id, label=body.label, seats=body.seats, created_at=as_utc(now)
        )

    def list_tables(self, caller: Principal, page: PageRequest) -> Page[schemas.TablePublic]:
        query = select(dining_tables).where(dining_tables.c.restaurant_id == caller.restaurant_id)
        return self._page(query, dining_tables.c, page, _table_public)

    def timezone_of(self, restaurant_id: str) -> str:
        """The restaurant's IANA time zone; restaurants never move, so it is cached."""
        cached = self._timezones.get(restaurant_id)
        if cached is None:
            with self._engine.connect() as conn:
                found = conn.execute(
                    select(restaurants.c.timezone).where(restaurants.c.id == restaurant_id)
                ).scalar()
            cached = str(found or "UTC")
            if found is not None:
                self._timezones[restaurant_id] = cached
        return cached

    def table_exists(self, restaurant_id: str, table_id: str) -> bool:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(dining_tables.c.id).where(
                    dining_tables.c.id == table_id, dining_tables.c.restaurant_id == restaurant_id
                )
            ).first()
        return found is not None

    # -- shared ----------------------------------------------------------------------------

    def _page(
        self, query: Select[Any], columns: Any, page: PageRequest, to_public: Any
    ) -> Page[Any]:
        """Oldest first, keyset on (created_at, id) when a cursor is given."""
        total_query = select(func.count()).select_from(query.subquery())
        ordered = query.order_by(columns.created_at, columns.id).limit(page.limit + 1)
        if page.cursor is not None:
            ordered = ordered.where(_after(columns, page.cursor))
        else:
            ordered = ordered.offset(page.skip)
        with self._engine.connect() as conn:
            rows: Sequence[Row[Any]] = conn.execute(ordered).all()
            total = conn.execute(total_query).scalar_one()
        items = [to_public(row) for row in rows]
        return build_page(
            items, page, int(total), key_of=lambda item: [item.created_at.isoformat(), item.id]
        )


def _after(columns: Any, cursor: list[Any]) -> Any:
    try:
        created_raw, last_id = cursor
        created = naive_utc(datetime.fromisoformat(created_raw))
    except (TypeError, ValueError, OverflowError) as exc:  # year 1 or 9999 with an offset
        raise Unprocessable("cursor is not valid") from exc
    return or_(
        columns.created_at > created, and_(columns.created_at == created, columns.id > str(last_id))
    )


def _normal_email(email: str) -> str:
    return email.strip().lower()


def _user_public(row: Row[Any]) -> schemas.UserPublic:
    return schemas.UserPublic(
        id=row.id,
        email=row.email,
        role=Role(row.role),
        is_active=row.is_active,
        created_at=as_utc(row.created_at),
    )


def _api_key_public(row: Row[Any]) -> schemas.ApiKeyPublic:
    return schemas.ApiKeyPublic(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        role=Role(row.role),
        created_at=as_utc(row.created_at),
        revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
    )


def _table_public(row: Row[Any]) -> schemas.TablePublic:
    return schemas.TablePublic(
        id=row.id, label=row.label, seats=row.seats, created_at=as_utc(row.created_at)
    )
