"""A realistic event history for benchmarks, appended through the event store.

Restaurants sign up through the identity service (with dining tables), then every event goes
through ``EventStore.append_many``: menus (categories, items, later price changes, sold-out
spells, renames, specials) and orders (placed with 1-4 lines, sometimes edited, started,
ready, served, paid or, ~5%, cancelled), each decided by the aggregates' ``decide``/``evolve``
exactly as the command handlers would. Orders happen in each restaurant's local opening
hours, so restaurants in different time zones interleave in UTC.

Simulated time runs in global slices (default one hour): per slice, each restaurant's events
of that slice are one ``append_many`` (one stream write per aggregate touched), recorded by an
EventStore whose clock reads the slice's last event time, so ``recorded_at`` follows the
payload times. Worker processes each own a share of the restaurants and walk the same slices,
so restaurants interleave in the ``events`` table too. Everything except the ids that the
store and the identity service draw themselves (event, restaurant, user and table ids) is a
function of the spec: payloads, their times, every aggregate's id.

The seeded database is kept: a marker table records the spec's fingerprint and the event
count, and ``ensure_dataset`` reuses a database that already holds the requested dataset.

    from bench.seeding import DatasetSpec, ensure_dataset
    info = ensure_dataset(database_url, DatasetSpec(events=1_000_000, restaurants=500))
    info = ensure_dataset(url, DatasetSpec(events=None, orders=1_000_000, restaurants=1))
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import math
import multiprocessing
import os
import queue
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import databases
from sqlalchemy import Engine, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import make_url

from coffeeshop.api.db import make_engine
from coffeeshop.api.demo import CANCEL_REASONS, CUSTOMERS, MENU
from coffeeshop.api.identity.credentials import PasswordHasher
from coffeeshop.api.identity.principal import Principal
from coffeeshop.api.identity.roles import Role
from coffeeshop.api.identity.schemas import SignupCreate, TableCreate
from coffeeshop.api.identity.service import IdentityService
from coffeeshop.api.settings import Settings
from coffeeshop.commands import category, menu_item, order
from coffeeshop.events.envelope import EventMetadata, StreamRef, StreamWrite
from coffeeshop.events.menu import CATEGORY_STREAM, MENU_ITEM_STREAM
from coffeeshop.events.orders import ORDER_STREAM, PaymentMethod
from coffeeshop.events.registry import DomainEvent, registry
from coffeeshop.events.store import EventStore
from coffeeshop.migrations.runner import upgrade

GENERATOR_VERSION = 2  # bump whenever the generator writes something different for a spec
MARKER_TABLE = "bench_dataset"
BENCH_PASSWORD = "bench-password-0123456789"
PROTECTED_DATABASES = frozenset({"test", "mysql", "information_schema", "performance_schema"})
SEED_TIMEOUT_S = 3600.0
PROGRESS_EVERY_S = 5.0

Progress = Callable[[str], None]


# -- the spec ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """What to seed. Give ``events`` (the exact total in ``events``) or ``orders`` (per
    restaurant budgets in orders instead, e.g. one tenant with a million orders)."""

    events: int | None = 1_000_000
    orders: int | None = None
    restaurants: int = 500
    days: int = 28
    seed: int = 1
    slice_minutes: int = 60
    end: date = date(2026, 11, 2)  # the history ends at this date's UTC midnight

    def __post_init__(self) -> None:
        if (self.events is None) == (self.orders is None):
            raise ValueError("give exactly one of events and orders")
        if self.restaurants < 1 or self.days < 2 or self.slice_minutes < 1:
            raise ValueError("restaurants >= 1, days >= 2 and slice_minutes >= 1")
        if self.events is not None and self.events < 20 * self.restaurants:
            raise ValueError("events: at least 20 per restaurant (a menu and a few orders)")
        if self.orders is not None and self.orders < self.restaurants:
            raise ValueError("orders: at least one per restaurant")

    @property
    def start(self) -> date:
        return self.end - timedelta(days=self.days)

    def fingerprint(self) -> str:
        body = {**asdict(self), "end": self.end.isoformat(), "generator": GENERATOR_VERSION}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    def describe(self) -> str:
        size = f"{self.events:,} events" if self.events is not None else f"{self.orders:,} orders"
        return (
            f"{size} over {self.restaurants} restaurants, {self.days} days to {self.end}, "
            f"seed {self.seed}, {self.slice_minutes}-minute append slices"
        )


def _rng(spec: DatasetSpec, *parts: object) -> random.Random:
    """A generator per purpose and restaurant. Keyed by the whole spec, not just the seed:
    stream ids are unique across the store, so two datasets must not share any."""
    return random.Random(":".join(map(str, (spec.fingerprint(), *parts))))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# -- restaurants -------------------------------------------------------------------------------

# (IANA zone, currency, price factor, weight): DST and no-DST zones, both hemispheres,
# half- and quarter-hour offsets, from UTC-10 to UTC+13.
ZONES: tuple[tuple[str, str, float, int], ...] = (
    ("Europe/Berlin", "EUR", 1.0, 8),
    ("Europe/Paris", "EUR", 1.05, 6),
    ("Europe/Madrid", "EUR", 0.85, 5),
    ("Europe/London", "GBP", 0.95, 7),
    ("Europe/Lisbon", "EUR", 0.75, 3),
    ("Europe/Helsinki", "EUR", 1.1, 2),
    ("America/New_York", "USD", 1.25, 8),
    ("America/Chicago", "USD", 1.1, 4),
    ("America/Denver", "USD", 1.1, 2),
    ("America/Los_Angeles", "USD", 1.3, 5),
    ("America/St_Johns", "CAD", 1.2, 1),
    ("America/Sao_Paulo", "BRL", 2.5, 3),
    ("America/Mexico_City", "MXN", 15.0, 2),
    ("Pacific/Honolulu", "USD", 1.35, 1),
    ("Asia/Kolkata", "INR", 60.0, 3),
    ("Asia/Kathmandu", "NPR", 100.0, 1),
    ("Asia/Singapore", "SGD", 1.3, 2),
    ("Australia/Sydney", "AUD", 1.5, 4),
    ("Australia/Adelaide", "AUD", 1.45, 1),
    ("Pacific/Auckland", "NZD", 1.6, 2),
    ("Africa/Johannesburg", "ZAR", 9.0, 2),
)
NAME_FIRST = ("Café", "Corner", "Little", "Blue", "Copper", "Morning", "Golden", "Old Town")
NAME_SECOND = ("Bean", "Roastery", "Kitchen", "Bakery", "Espresso Bar", "Tea House", "Table")


@dataclass(frozen=True)
class Profile:
    """A restaurant's character, a function of the spec and its index."""

    index: int
    name: str
    timezone: str
    currency: str
    price_factor: float
    weight: float  # relative business: busy and quiet places
    tables: int
    opens: int  # local minutes after midnight
    closes: int
    day_weights: tuple[float, ...]  # Monday..Sunday (0 = closed)


def profile(spec: DatasetSpec, index: int) -> Profile:
    rng = _rng(spec, "profile", index)
    zone, currency, factor, _ = rng.choices(ZONES, weights=[z[3] for z in ZONES])[0]
    weekdays = [rng.uniform(0.85, 1.15) for _ in range(5)]
    weekend = [rng.uniform(0.6, 1.5), rng.uniform(0.4, 1.3)]
    if rng.random() < 0.2:
        weekend[1] = 0.0  # closed on Sundays
    return Profile(
        index=index,
        name=f"{rng.choice(NAME_FIRST)} {rng.choice(NAME_SECOND)} {index + 1}",
        timezone=zone,
        currency=currency,
        price_factor=factor * rng.uniform(0.9, 1.15),
        weight=min(6.0, max(0.2, rng.lognormvariate(0.0, 0.7))),
        tables=rng.choice((0, 4, 6, 8, 10, 12, 16)),
        opens=rng.choice((390, 420, 450, 480)),
        closes=rng.choice((1020, 1080, 1140, 1200)),
        day_weights=(*weekdays, *weekend),
    )


def budgets(spec: DatasetSpec, profiles: list[Profile]) -> list[int]:
    """Each restaurant's share of the total (events or orders), by weight, summing exactly."""
    total = spec.events if spec.events is not None else spec.orders
    assert total is not None
    floor = 20 if spec.events is not None else 1
    spare = total - floor * len(profiles)
    weight = sum(p.weight for p in profiles)
    shares = [spare * p.weight / weight for p in profiles]
    result = [floor + math.floor(share) for share in shares]
    largest = sorted(range(len(shares)), key=lambda i: math.floor(shares[i]) - shares[i])
    for i in largest[: total - sum(result)]:
        result[i] += 1
    return result


@dataclass(frozen=True)
class Restaurant:
    """A signed-up restaurant: its identity rows exist."""

    profile: Profile
    restaurant_id: str
    owner_id: str
    table_ids: tuple[str, ...]


class _FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class _OneHash(PasswordHasher):
    """Every bench owner has the same password: argon2 once, not once per sign-up."""

    def __init__(self) -> None:
        super().__init__()
        self._bench_hash = super().hash(BENCH_PASSWORD)

    def hash(self, password: str) -> str:
        return self._bench_hash if password == BENCH_PASSWORD else super().hash(password)


def sign_up(engine: Engine, spec: DatasetSpec, profiles: list[Profile]) -> list[Restaurant]:
    """Restaurants, owners and dining tables through the identity service, a week before
    the history starts (4 threads; each sign-up is a transaction of its own)."""
    store = EventStore(engine, registry)
    hasher = _OneHash()
    signed_up = datetime.combine(spec.start - timedelta(days=7), clock_time(9), tzinfo=UTC)

    def one(p: Profile) -> Restaurant:
        clock = _FixedClock(signed_up + timedelta(minutes=p.index))
        identity = IdentityService(engine, store, hasher, clock)
        signup = identity.signup(
            SignupCreate(
                restaurant_name=p.name,
                email=f"owner+{spec.seed}-{p.index}@replay-bench.coffeeshop.example",
                password=BENCH_PASSWORD,
                timezone=p.timezone,
                currency=p.currency,
            )
        )
        owner = Principal(signup.restaurant_id, Role.OWNER, user_id=signup.user_id)
        rng = _rng(spec, "tables", p.index)
        tables = tuple(
            identity.create_table(
                owner, TableCreate(label=f"T{n}", seats=rng.choice((2, 2, 4, 4, 6)))
            ).id
            for n in range(1, p.tables + 1)
        )
        return Restaurant(p, signup.restaurant_id, signup.user_id, tables)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, profiles))


# -- one restaurant's history ------------------------------------------------------------------

SPECIALS = (
    ("Pumpkin spice latte", 480),
    ("Gingerbread latte", 470),
    ("Hot chocolate", 380),
    ("Affogato", 520),
    ("Iced matcha", 480),
    ("Cardamom bun", 360),
    ("Tomato soup", 780),
    ("Bircher muesli", 720),
)
LINE_NOTES = ("oat milk", "no sugar", "extra hot", "to go", "decaf", "extra shot", "no onions")
ORDER_NOTES = ("birthday", "allergy: nuts", "window seat", "pay at the counter")
CANCEL_AFTER = ("place", "start", "ready", "serve")  # the step an order is cancelled after
PAYMENT_METHODS: tuple[PaymentMethod, ...] = ("card", "cash", "other")
MIN_ITEMS = 6
STEP_MINUTES = {  # minutes from an order's previous step to this one
    "add": (0.3, 4.0),
    "remove": (0.3, 3.0),
    "start": (0.5, 5.0),
    "ready": (2.0, 12.0),
    "serve": (0.3, 3.0),
    "cancel": (1.0, 10.0),
}


@dataclass(frozen=True, slots=True)
class Timed:
    """One decided event at its simulated time; ``version`` is its stream's version."""

    at: datetime
    stream_type: str
    stream_id: str
    version: int
    event: DomainEvent


@dataclass(frozen=True, slots=True)
class _Shape:
    lines: int
    steps: tuple[str, ...]  # place, add, start, remove, ready, serve, pay, cancel


@dataclass(slots=True)
class _Order:
    order_id: str
    shape: _Shape
    table_id: str | None
    state: order.Order = field(default_factory=order.Order)
    version: int = 0
    step: int = 0


@dataclass(slots=True)
class _Item:
    state: menu_item.MenuItem
    version: int
    sold_out: bool = False


def _shape(rng: random.Random) -> _Shape:
    steps = ["place"]
    if rng.random() < 0.06:
        steps.append("add")
    steps.append("start")
    if rng.random() < 0.05:
        steps.append("add")
    if rng.random() < 0.04:
        steps.append("remove")
    steps += ["ready", "serve", "pay"]
    lines = rng.choices((1, 2, 3, 4), weights=(45, 30, 15, 10))[0]
    if "remove" in steps and lines + steps.count("add") < 2:
        lines = 2
    if rng.random() < 0.05:
        after = rng.choices(CANCEL_AFTER, weights=(35, 30, 20, 15))[0]
        steps = [*steps[: steps.index(after) + 1], "cancel"]
    return _Shape(lines, tuple(steps))


class History:
    """One restaurant's events in time order, decided step by step as time advances.

    The plan (menu, menu changes, orders per day and, for an events budget, every order's
    shape) is fixed up front from the spec's seed; each day's order times are drawn when the
    day begins, and what an order contains is chosen when it is placed, from the menu as it
    is at that moment (so names and prices are the ones a POS would have captured)."""

    def __init__(self, spec: DatasetSpec, restaurant: Restaurant, budget: int) -> None:
        self.restaurant = restaurant
        self._spec = spec
        self._zone = ZoneInfo(restaurant.profile.timezone)
        self._rng = _rng(spec, "history", restaurant.profile.index)
        self._queue: list[tuple[datetime, int, str, Any]] = []
        self._tick = itertools.count()
        self._categories: dict[str, tuple[category.Category, int]] = {}
        self._items: dict[str, _Item] = {}
        self._specials = list(SPECIALS)
        self.emitted = 0

        room = budget if spec.events is not None else 10_000
        menu = self._plan_menu(room)
        setup_events = len(menu) + sum(2 * len(items) for _, items in menu)
        changes = self._plan_changes(room)
        change_events = sum(n for _, _, n in changes)
        self._push(self._local(spec.start, restaurant.profile.opens - 90), "setup", menu)
        for at, kind, count in changes:
            self._push(at, kind, count)
        self._shapes: deque[_Shape] | None = None
        self.planned: int | None = None
        if spec.events is not None:
            self._shapes = deque(self._shapes_for_events(budget - setup_events - change_events))
            orders = len(self._shapes)
            self.planned = setup_events + change_events + sum(len(s.steps) for s in self._shapes)
        else:
            orders = budget
        for day, count in sorted(Counter(self._order_days(orders)).items()):
            self._push(self._local(day, 0), "day", (day, count))

    # -- planning ------------------------------------------------------------------------

    def _local(self, day: date, minutes: float) -> datetime:
        wall = datetime.combine(day, clock_time(0), tzinfo=self._zone)
        return (wall + timedelta(seconds=int(minutes * 60))).astimezone(UTC)

    def _price(self, cents: int) -> int:
        return max(10, round(cents * self.restaurant.profile.price_factor / 10) * 10)

    def _plan_menu(self, budget: int) -> list[tuple[str, list[tuple[str, int]]]]:
        rng = self._rng
        names = sorted(rng.sample(list(MENU), rng.randint(3, len(MENU))), key=list(MENU).index)
        menu = []
        for name in names:
            entries = [e for e in MENU[name] if rng.random() < 0.8] or MENU[name][:2]
            menu.append((name, [(item, self._price(cents)) for item, cents in entries]))
        # A small budget gets a smaller menu: setup stays under a quarter of the events.
        while len(menu) > 1 and len(menu) + 2 * sum(len(i) for _, i in menu) > budget // 4:
            menu.pop()
        first, items = menu[0]
        spare = [
            (item, self._price(cents))
            for item, cents in MENU[first]
            if item not in {name for name, _ in items}
        ]
        while len(items) < MIN_ITEMS and spare:
            items.append(spare.pop(0))
        return menu

    def _plan_changes(self, budget: int) -> list[tuple[datetime, str, int]]:
        """(when, what, events): price rounds, sold-out spells, renames, new specials; at
        most a twentieth of the budget."""
        rng, p, spec = self._rng, self.restaurant.profile, self._spec
        plan: list[tuple[datetime, str, int]] = []
        wanted = (
            ("prices", round(spec.days / 14 * rng.uniform(0.3, 1.5))),
            ("sold_out", round(spec.days / 3 * rng.uniform(0.3, 1.5))),
            ("rename", rng.choice((0, 0, 1, 1, 2))),
            ("special", rng.choice((0, 1, 1, 2))),
        )
        for kind, count in wanted:
            for _ in range(count):
                day = spec.start + timedelta(days=rng.randint(1, spec.days - 1))
                if kind == "sold_out":  # sold out during the day, back a few hours later
                    at = self._local(day, rng.uniform(p.opens + 120, p.closes - 240))
                    events = 2
                else:  # before opening
                    at = self._local(day, p.opens - rng.uniform(20, 60))
                    events = {"prices": rng.randint(2, 6), "rename": 1, "special": 2}[kind]
                if sum(n for _, _, n in plan) + events <= budget // 20:
                    plan.append((at, kind, events))
        return plan

    def _shapes_for_events(self, events: int) -> list[_Shape]:
        """Orders whose events add up to exactly ``events``: the last one is cut short (an
        order still open when the history ends)."""
        shapes: list[_Shape] = []
        left = events
        while left > 0:
            shape = _shape(self._rng)
            if len(shape.steps) > left:
                steps = shape.steps[:left]
                shape = _Shape(max(shape.lines, 2) if "remove" in steps else shape.lines, steps)
            shapes.append(shape)
            left -= len(shape.steps)
        return shapes

    def _order_days(self, count: int) -> list[date]:
        """Busier and quieter weekdays (some places close on Sundays)."""
        p, spec = self.restaurant.profile, self._spec
        days = [spec.start + timedelta(days=n) for n in range(spec.days)]
        weights = [p.day_weights[d.weekday()] for d in days]
        weights[0] *= 0.5  # the menu is set up that morning
        return self._rng.choices(days, weights=weights, k=count)

    def _order_times(self, day: date, count: int) -> list[datetime]:
        """Local opening hours, with breakfast and lunch peaks."""
        rng, p = self._rng, self.restaurant.profile
        times = []
        for _ in range(count):
            peak = rng.random()
            if peak < 0.4:
                minute = rng.gauss(8.5 * 60, 50)
            elif peak < 0.7:
                minute = rng.gauss(12.75 * 60, 50)
            else:
                minute = rng.uniform(p.opens, p.closes)
            minute = min(max(minute, p.opens + rng.uniform(0, 10)), p.closes - 30)
            times.append(self._local(day, minute + rng.random()))
        return sorted(times)

    # -- running -------------------------------------------------------------------------

    def _push(self, at: datetime, kind: str, payload: Any) -> None:
        heapq.heappush(self._queue, (at, next(self._tick), kind, payload))

    def next_at(self) -> datetime | None:
        return self._queue[0][0] if self._queue else None

    def advance(self, until: datetime) -> list[Timed]:
        """Every event before ``until`` (menu setup and price rounds may run a little past
        it), in the order decided."""
        out: list[Timed] = []
        while self._queue and self._queue[0][0] < until:
            at, _, kind, payload = heapq.heappop(self._queue)
            if kind == "step":
                self._step(at, payload, out)
            elif kind == "place":
                self._place(at, payload, out)
            elif kind == "day":
                day, count = payload
                for placed in self._order_times(day, count):
                    shape = self._shapes.popleft() if self._shapes is not None else None
                    self._push(placed, "place", shape or _shape(self._rng))
            elif kind == "setup":
                self._setup(at, payload, out)
            else:
                self._menu_change(at, kind, payload, out)
        self.emitted += len(out)
        return out

    def _setup(
        self, at: datetime, menu: list[tuple[str, list[tuple[str, int]]]], out: list[Timed]
    ) -> None:
        """Categories, then items one by one: what a manager setting up the POS does."""
        rng = self._rng
        for position, (name, entries) in enumerate(menu):
            category_id = _uuid(rng)
            create = category.CreateCategory(category_id, name, position)
            self._decide_category(out, at, category_id, create)
            for item_name, price in entries:
                at += timedelta(seconds=rng.randint(15, 60))
                description = f"House {item_name.lower()}" if rng.random() < 0.6 else ""
                self._add_item(out, at, category_id, item_name, description, price)

    def _add_item(
        self,
        out: list[Timed],
        at: datetime,
        category_id: str,
        name: str,
        description: str,
        price: int,
    ) -> None:
        """MenuCommands.add_item: the item's stream, then the category's attachment."""
        item_id = _uuid(self._rng)
        command = menu_item.AddMenuItem(item_id, category_id, name, description, price, True)
        self._items[item_id] = _Item(menu_item.MenuItem(), 0)
        self._decide_item(out, at, item_id, command)
        self._decide_category(out, at, category_id, category.AttachItem(item_id))

    def _decide_category(
        self, out: list[Timed], at: datetime, category_id: str, command: category.CategoryCommand
    ) -> None:
        state, version = self._categories.get(category_id, (category.Category(), 0))
        (event,) = category.decide(command, state)
        out.append(Timed(at, CATEGORY_STREAM, category_id, version + 1, event))
        self._categories[category_id] = (category.evolve(state, event), version + 1)

    def _decide_item(
        self, out: list[Timed], at: datetime, item_id: str, command: menu_item.MenuItemCommand
    ) -> None:
        item = self._items[item_id]
        (event,) = menu_item.decide(command, item.state)
        item.state, item.version = menu_item.evolve(item.state, event), item.version + 1
        out.append(Timed(at, MENU_ITEM_STREAM, item_id, item.version, event))

    def _menu_change(self, at: datetime, kind: str, payload: Any, out: list[Timed]) -> None:
        rng = self._rng
        ids = sorted(self._items)
        if kind == "sold_out" and len(self._orderable()) <= 4:
            kind, payload = "prices", 2  # keep enough on the menu: a price round instead
        if kind == "prices":
            for item_id in rng.sample(ids, min(payload, len(ids))):
                old = self._items[item_id].state.price_cents
                new = max(old + 10, round(old * rng.uniform(1.03, 1.12) / 10) * 10)
                self._decide_item(out, at, item_id, menu_item.UpdateMenuItem(price_cents=new))
                at += timedelta(seconds=rng.randint(10, 40))
        elif kind == "sold_out":
            item_id = rng.choice([i for i in ids if not self._items[i].sold_out])
            self._items[item_id].sold_out = True
            self._decide_item(out, at, item_id, menu_item.SetAvailability(False))
            self._push(at + timedelta(minutes=rng.randint(60, 240)), "back", item_id)
        elif kind == "back":
            self._items[payload].sold_out = False
            self._decide_item(out, at, payload, menu_item.SetAvailability(True))
        elif kind == "rename":
            item_id = rng.choice(ids)
            name = self._items[item_id].state.name
            renamed = name[len("Classic ") :] if name.startswith("Classic ") else f"Classic {name}"
            self._decide_item(out, at, item_id, menu_item.UpdateMenuItem(name=renamed[:100]))
        elif kind == "special":
            name, price = self._specials.pop(rng.randrange(len(self._specials)))
            first = min(self._categories, key=lambda c: self._categories[c][0].sort_order)
            self._add_item(out, at, first, name, "Seasonal special", self._price(price))
        else:
            raise ValueError(f"unknown menu change {kind!r}")

    def _orderable(self) -> list[menu_item.MenuItem]:
        return [i.state for _, i in sorted(self._items.items()) if i.state.orderable]

    def _line(self, item: menu_item.MenuItem) -> order.LineRequest:
        rng = self._rng
        quantity = rng.choices((1, 2, 3, 4), weights=(75, 17, 6, 2))[0]
        notes = rng.choice(LINE_NOTES) if rng.random() < 0.1 else ""
        return order.LineRequest(_uuid(rng), item, quantity, notes)

    def _place(self, at: datetime, shape: _Shape, out: list[Timed]) -> None:
        rng, tables = self._rng, self.restaurant.table_ids
        table = rng.choice(tables) if tables and rng.random() < 0.55 else None
        current = _Order(_uuid(rng), shape, table)
        orderable = self._orderable()
        items = rng.sample(orderable, min(shape.lines, len(orderable)))
        command = order.PlaceOrder(
            current.order_id,
            tuple(self._line(item) for item in items),
            table,
            rng.choice(CUSTOMERS) if rng.random() < 0.45 else None,
            rng.choice(ORDER_NOTES) if rng.random() < 0.03 else "",
        )
        self._decide_order(out, at, current, command)

    def _step(self, at: datetime, current: _Order, out: list[Timed]) -> None:
        rng = self._rng
        kind = current.shape.steps[current.step]
        command: order.OrderCommand
        if kind == "add":
            command = order.AddItem(self._line(rng.choice(self._orderable())))
        elif kind == "remove":
            command = order.RemoveItem(rng.choice(current.state.lines).line_id)
        elif kind == "start":
            command = order.StartPreparation()
        elif kind == "ready":
            command = order.MarkReady()
        elif kind == "serve":
            command = order.Serve()
        elif kind == "pay":
            total = current.state.total_cents
            round_up = -(-total // 100) * 100 - total
            tip = rng.choice((0, 0, 0, 0, 0, 50, 100, 200, round_up, round(total * 0.1)))
            method = rng.choices(PAYMENT_METHODS, weights=(65, 30, 5))[0]
            command = order.Pay(method, total, tip)
        elif kind == "cancel":
            command = order.Cancel(rng.choice(CANCEL_REASONS))
        else:
            raise ValueError(f"unknown order step {kind!r}")
        self._decide_order(out, at, current, command)

    def _decide_order(
        self, out: list[Timed], at: datetime, current: _Order, command: order.OrderCommand
    ) -> None:
        (event,) = order.decide(command, current.state, at)
        current.state, current.version = order.evolve(current.state, event), current.version + 1
        out.append(Timed(at, ORDER_STREAM, current.order_id, current.version, event))
        current.step += 1
        if current.step < len(current.shape.steps):
            self._push(at + self._gap(current), "step", current)

    def _gap(self, current: _Order) -> timedelta:
        """How long until the order's next step: minutes, as at a real counter."""
        rng = self._rng
        following = current.shape.steps[current.step]
        if following == "pay":
            eat_in = current.table_id is not None
            minutes = rng.uniform(8, 50) if eat_in else rng.uniform(0.2, 2)
        else:
            low, high = STEP_MINUTES[following]
            minutes = rng.uniform(low, high)
        return timedelta(milliseconds=round(minutes * 60_000))


# -- appending ---------------------------------------------------------------------------------


def writes_of(restaurant_id: str, timed: list[Timed]) -> list[StreamWrite]:
    """One write per stream, in order of each stream's first event (append_many checks every
    write's version before inserting, so a stream can appear only once per call)."""
    grouped: dict[str, list[Timed]] = {}
    for t in timed:
        grouped.setdefault(t.stream_id, []).append(t)
    return [
        StreamWrite(
            StreamRef(restaurant_id, group[0].stream_type, stream_id),
            group[0].version - 1,
            tuple(t.event for t in group),
        )
        for stream_id, group in grouped.items()
    ]


def slices(spec: DatasetSpec) -> Iterator[datetime]:
    """Slice ends from a day before the start (UTC+13 opens early) to a day after the end."""
    step = timedelta(minutes=spec.slice_minutes)
    at = datetime.combine(spec.start - timedelta(days=1), clock_time(0), tzinfo=UTC)
    last = datetime.combine(spec.end + timedelta(days=1), clock_time(0), tzinfo=UTC)
    while at < last:
        at += step
        yield at


def bench_settings(database_url: str, pool_size: int = 5) -> Settings:
    return databases.bench_settings(database_url, db_pool_size=pool_size, db_max_overflow=pool_size)


@dataclass(frozen=True)
class _Assignment:
    restaurant: Restaurant
    budget: int


def _append_worker(
    database_url: str,
    spec: DatasetSpec,
    assignments: list[_Assignment],
    worker: int,
    reports: Any,
) -> None:
    """A worker process: its restaurants' histories, slice by slice, through append_many."""
    try:
        # The application's own engine: rows are written exactly as the service writes them.
        engine = make_engine(bench_settings(database_url, pool_size=1))
        clock = _FixedClock(datetime.now(UTC))
        store = EventStore(engine, registry, clock)
        histories = [History(spec, a.restaurant, a.budget) for a in assignments]
        types: Counter[str] = Counter()
        appends = pending = 0
        last_report = time.monotonic()
        for until in slices(spec):
            for history in histories:
                next_at = history.next_at()
                if next_at is None or next_at >= until:
                    continue
                timed = history.advance(until)
                if not timed:  # only plans moved (a day's orders were scheduled)
                    continue
                restaurant = history.restaurant
                clock.now = max(t.at for t in timed)  # recorded right after the last event
                request = f"seed-{restaurant.profile.index}-{timed[0].at.timestamp():.0f}"
                metadata = EventMetadata(
                    correlation_id=request,
                    causation_id=request,
                    request_id=request,
                    actor=f"user:{restaurant.owner_id}",
                )
                store.append_many(writes_of(restaurant.restaurant_id, timed), metadata)
                types.update(t.event.event_type for t in timed)
                appends += 1
                pending += len(timed)
            if time.monotonic() - last_report > 1.0:
                reports.put(("progress", worker, pending))
                pending, last_report = 0, time.monotonic()
        for history in histories:
            if history.planned is not None and history.emitted != history.planned:
                raise AssertionError(
                    f"restaurant {history.restaurant.profile.index}: planned "
                    f"{history.planned} events, appended {history.emitted}"
                )
        reports.put(("progress", worker, pending))
        reports.put(("done", worker, dict(types), appends))
        engine.dispose()
    except BaseException as exc:
        reports.put(("failed", worker, f"{type(exc).__name__}: {exc}"))
        raise


def append_histories(
    database_url: str,
    spec: DatasetSpec,
    restaurants: list[Restaurant],
    workers: int,
    progress: Progress,
) -> tuple[dict[str, int], int]:
    """Run the worker processes; returns events by type and the number of appends."""
    amounts = budgets(spec, [r.profile for r in restaurants])
    # Spread the work evenly: biggest restaurants first, each to the least loaded worker.
    shares: list[list[_Assignment]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for r, budget in sorted(zip(restaurants, amounts, strict=True), key=lambda x: -x[1]):
        target = loads.index(min(loads))
        shares[target].append(_Assignment(r, budget))
        loads[target] += budget
    for share in shares:
        share.sort(key=lambda a: a.restaurant.profile.index)
    context = multiprocessing.get_context("spawn")
    reports = context.Queue()
    processes = [
        context.Process(
            target=_append_worker,
            args=(database_url, spec, share, n, reports),
            name=f"seed-worker-{n}",
        )
        for n, share in enumerate(shares)
        if share
    ]
    for process in processes:
        process.start()
    types: Counter[str] = Counter()
    appends = appended = 0
    done: set[int] = set()
    begin = last = time.monotonic()
    total = spec.events
    try:
        while len(done) < len(processes):
            try:
                message = reports.get(timeout=0.5)
            except queue.Empty:
                message = None
            if message is not None and message[0] == "progress":
                appended += message[2]
            elif message is not None and message[0] == "done":
                done.add(message[1])
                types.update(message[2])
                appends += message[3]
            elif message is not None and message[0] == "failed":
                raise RuntimeError(f"seed worker {message[1]} failed: {message[2]}")
            elif any(p.exitcode not in (None, 0) for p in processes):
                raise RuntimeError("a seed worker died without reporting")
            now = time.monotonic()
            if now - last >= PROGRESS_EVERY_S:
                rate = appended / (now - begin)
                of = f" of {total:,}" if total else ""
                progress(f"seeding: {appended:,}{of} events appended, {rate:,.0f} events/s")
                last = now
            if now - begin > SEED_TIMEOUT_S:
                raise RuntimeError(f"seeding did not finish within {SEED_TIMEOUT_S:.0f}s")
        for process in processes:
            process.join(30)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(10)
    return dict(types), appends


# -- the kept database -------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedInfo:
    """What the database holds and how it got there."""

    spec: DatasetSpec
    events: int
    by_type: dict[str, int]
    seeded_at: str
    seconds: float  # the whole seeding: schema, sign-ups, appends
    append_seconds: float
    appends: int
    workers: int
    reused: bool = False

    @property
    def rate(self) -> float:
        return self.events / self.append_seconds if self.append_seconds else math.nan


def database_name(database_url: str) -> str:
    name = make_url(database_url).database
    if not name or name in PROTECTED_DATABASES:
        raise ValueError(f"refusing to seed database {name!r}: give a bench database of its own")
    return name


def create_database(database_url: str) -> None:
    name = database_name(database_url)
    settings = bench_settings(database_url, pool_size=1)
    databases.create_database(settings, databases.server_of(database_url), name)


def drop_database(database_url: str) -> None:
    name = database_name(database_url)
    settings = bench_settings(database_url, pool_size=1)
    databases.drop_database(settings, databases.server_of(database_url), name)


def recorded(engine: Engine) -> tuple[str, SeedInfo] | None:
    """The marker's fingerprint and dataset, if seeding completed and every event is there."""
    with engine.connect() as conn:
        if MARKER_TABLE not in sa_inspect(conn).get_table_names():
            return None
        row = conn.execute(
            text(f"SELECT fingerprint, spec, info FROM {MARKER_TABLE} WHERE id = 1")
        ).first()
        if row is None:
            return None
        count = conn.execute(text("SELECT COUNT(*) FROM events")).scalar_one()
    spec_body, info = json.loads(row.spec), json.loads(row.info)
    spec_body["end"] = date.fromisoformat(spec_body["end"])
    seed_info = SeedInfo(spec=DatasetSpec(**spec_body), **info)
    return (row.fingerprint, seed_info) if seed_info.events == count else None


def _write_marker(engine: Engine, info: SeedInfo) -> None:
    spec_body = {**asdict(info.spec), "end": info.spec.end.isoformat()}
    body = {k: v for k, v in asdict(info).items() if k not in {"spec", "reused"}}
    with engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (id INT PRIMARY KEY, "
                "fingerprint VARCHAR(64) NOT NULL, spec TEXT NOT NULL, info TEXT NOT NULL)"
            )
        )
        conn.execute(text(f"DELETE FROM {MARKER_TABLE}"))
        conn.execute(
            text(f"INSERT INTO {MARKER_TABLE} VALUES (1, :fingerprint, :spec, :info)"),
            {
                "fingerprint": info.spec.fingerprint(),
                "spec": json.dumps(spec_body),
                "info": json.dumps(body),
            },
        )


def ensure_dataset(
    database_url: str,
    spec: DatasetSpec,
    *,
    reseed: bool = False,
    workers: int | None = None,
    progress: Progress = print,
) -> SeedInfo:
    """The database at ``database_url`` holding ``spec``'s dataset: reused when its marker
    matches (same spec, same seed, every event still there), else emptied and seeded.
    Either way it ends migrated to the latest schema."""
    database_name(database_url)
    create_database(database_url)
    engine = make_engine(bench_settings(database_url))
    try:
        found = None if reseed else recorded(engine)
        if found is not None and found[0] == spec.fingerprint():
            upgrade(engine)  # the code may have gained migrations since it was seeded
            return SeedInfo(**{**asdict(found[1]), "spec": spec, "reused": True})
        if found is not None:
            progress(
                f"the kept dataset ({found[1].spec.describe()}, fingerprint {found[0]}) is not "
                f"the one asked for (fingerprint {spec.fingerprint()}: spec or generator "
                "changed); reseeding"
            )
        return _seed(engine, database_url, spec, workers or default_workers(), progress)
    finally:
        engine.dispose()


def default_workers() -> int:
    """Two per CPU: a worker spends much of its time waiting for MariaDB round trips."""
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


def _seed(
    engine: Engine, database_url: str, spec: DatasetSpec, workers: int, progress: Progress
) -> SeedInfo:
    begin = time.perf_counter()
    progress(f"seeding {spec.describe()}: emptying and migrating the database")
    databases.empty_and_migrate(engine)
    profiles = [profile(spec, n) for n in range(spec.restaurants)]
    progress(f"seeding: signing up {spec.restaurants} restaurants (identity service)")
    restaurants = sign_up(engine, spec, profiles)
    progress(f"seeding: appending histories with {workers} worker processes")
    appending = time.perf_counter()
    by_type, appends = append_histories(database_url, spec, restaurants, workers, progress)
    append_seconds = time.perf_counter() - appending
    with engine.begin() as conn:
        # No relay runs here: leave the outbox as a relay would have, published and empty.
        conn.execute(text("TRUNCATE TABLE outbox"))
        events = conn.execute(text("SELECT COUNT(*) FROM events")).scalar_one()
    if events != sum(by_type.values()):
        raise RuntimeError(f"the store holds {events} events, the workers appended {by_type}")
    info = SeedInfo(
        spec=spec,
        events=int(events),
        by_type=dict(sorted(by_type.items())),
        seeded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=time.perf_counter() - begin,
        append_seconds=append_seconds,
        appends=appends,
        workers=workers,
    )
    _write_marker(engine, info)
    progress(
        f"seeded {info.events:,} events in {info.seconds:.0f}s "
        f"(appends: {info.append_seconds:.0f}s, {info.rate:,.0f} events/s, {appends:,} "
        f"append_many calls, {workers} workers)"
    )
    return info


def database_size(engine: Engine) -> tuple[int, int]:
    """(bytes on disk of the database's tablespaces, of which the events table)."""
    name = engine.url.database
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT NAME, ALLOCATED_SIZE FROM information_schema.INNODB_SYS_TABLESPACES "
                "WHERE NAME LIKE :prefix"
            ),
            {"prefix": f"{name}/%"},
        ).all()
    total = sum(int(r.ALLOCATED_SIZE) for r in rows)
    events = sum(int(r.ALLOCATED_SIZE) for r in rows if r.NAME.endswith("/events"))
    return total, events
