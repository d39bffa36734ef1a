"""The production read side under faults: real `coffeeshop serve`, `relay` and `projector`
processes on MariaDB and a private Redis, while POS clients keep working over HTTP.

During the load the projector is killed with SIGKILL 5 times and the relay 3 times (each
restarted after a short pause), Redis is flushed once and restarted (SHUTDOWN NOSAVE) once,
and ``coffeeshop replay --all`` rebuilds every projection twice (shadow tables swapped in
while the live projector keeps writing), on a seeded random schedule (``FAULT_SEED=<n>``
replays one; the seed, the plan and what actually happened are printed, and repeated in
every failure message). Meanwhile a reader per restaurant lists its orders every few tens of
milliseconds: not one of those GETs may fail or come back empty, least of all during a swap.
Afterwards the read tables must equal what the event store implies, ``coffeeshop verify``
must find no drift, and the last projector must read every consumer group of the bus.

Everything is bounded: the load stops after the last fault (and at most ``LOAD_CAP_S``), the
catch-up wait, every HTTP request and every subprocess have timeouts, and every process is
killed at teardown, whatever happened.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
import traceback
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from coffeeshop.api.db import make_engine
from coffeeshop.events.orders import (
    ORDER_STREAM,
    OrderCancelled,
    OrderItemAdded,
    OrderItemRemoved,
    OrderPaid,
    OrderPlaced,
    OrderPreparationStarted,
    OrderReady,
    OrderServed,
)
from coffeeshop.projections.orders import orders as orders_table
from coffeeshop.projections.shadow import NEXT as SHADOW
from coffeeshop.projections.shadow import OLD as SWAPPED_OUT
from coffeeshop.projections.shadow import copy_name
from tests.conftest import make_settings
from tests.faults.conftest import (
    CODE_ROOT,
    RedisServer,
    Service,
    Services,
    connected_to,
    consumers_by_group,
    free_port,
    reads_every_group,
    service_env,
    wait_http_healthy,
    wait_until,
)

pytestmark = [pytest.mark.mysql, pytest.mark.redis]

PROJECTOR_KILLS = 5
RELAY_KILLS = 3
RESTAURANTS = 2
POS_PER_RESTAURANT = 3
LOAD_MIN_S = 25.0
LOAD_CAP_S = 75.0  # the load stops here even if the fault schedule has not finished
STARTUP_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 40.0
CONVERGE_TIMEOUT_S = 60.0  # the projector's store catch-up runs every 5 s
VERIFY_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 10.0
ATTEMPTS = 5  # per command, with the same Idempotency-Key
MIN_COMMANDS = 300
MIN_ORDERS = 60
# `coffeeshop replay --all` during the load, one after the other: first the operator's
# default (parallel jobs, one per CPU, each swapping its projections in from a child process),
# then in a single process (the other way a swap happens; quicker on a small store, too).
REPLAY_COMMANDS = (
    ["replay", "--all", "--quiet"],
    ["replay", "--all", "--quiet", "--jobs", "1"],
)
REPLAYS = len(REPLAY_COMMANDS)
REPLAY_TIMEOUT_S = 90.0
READ_PAUSE_S = (0.02, 0.05)  # between two list GETs of one reader
MIN_READS_PER_REPLAY = 20  # list GETs that must overlap each replay for it to mean anything
SWAP_MARGIN_S = 0.5  # around the moment the orders shadow table was renamed into place
BUS_CHECK_TIMEOUT_S = 15.0
PASSWORD = "fault-test-password-0123"
STATUS_AFTER = {
    OrderPlaced.event_type: "pending",
    OrderPreparationStarted.event_type: "preparing",
    OrderReady.event_type: "ready",
    OrderServed.event_type: "served",
    OrderPaid.event_type: "paid",
    OrderCancelled.event_type: "cancelled",
}
LINE_CHANGES = {OrderItemAdded.event_type, OrderItemRemoved.event_type}
MENU = {
    "Coffee": [("Espresso", 250), ("Flat white", 380), ("Latte", 420), ("Filter", 300)],
    "Bakery": [("Croissant", 290), ("Cinnamon bun", 350), ("Banana bread", 320)],
}
CUSTOMERS = ("Ana", "Bo", "Chidi", "Dana", "Emre", "Fatou")


# -- what happened -----------------------------------------------------------------------------


class Timeline:
    """Timestamped notes from every thread, relative to the start of the load."""

    def __init__(self) -> None:
        self.zero = time.monotonic()
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def note(self, message: str) -> None:
        line = f"{time.monotonic() - self.zero:7.2f}s  {message}"
        with self._lock:
            self.lines.append(line)
        print(line, flush=True)


@dataclass
class Kill:
    service: str
    incarnation: int
    pid: int
    returncode: int
    uptime_s: float
    reading: bool | None  # projector: did it read every consumer group? (None: unknown)
    restarted_pid: int | None = None


@dataclass
class LoadStats:
    ok: Counter[str] = field(default_factory=Counter)
    replayed: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    transient: Counter[str] = field(default_factory=Counter)
    gave_up: Counter[str] = field(default_factory=Counter)
    reads: Counter[str] = field(default_factory=Counter)
    placed: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def commands(self) -> int:
        return sum(self.ok.values())

    def describe(self) -> str:
        return (
            f"commands ok {self.commands} {dict(sorted(self.ok.items()))}; "
            f"idempotent replays {dict(self.replayed)}; rejected {dict(self.rejected)}; "
            f"transient errors {dict(self.transient)}; gave up {dict(self.gave_up)}; "
            f"reads {dict(self.reads)}"
        )


@dataclass(frozen=True)
class Read:
    """One GET of a restaurant's order list (times are time.monotonic())."""

    restaurant: str
    began: float
    ended: float
    status: int | None  # None: no HTTP answer
    items: int | None  # orders on the page (200 only)
    total: int | None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status != 200 or self.error is not None

    @property
    def empty(self) -> bool:
        return self.items == 0

    def overlaps(self, began: float, ended: float) -> bool:
        return self.began < ended and self.ended > began


@dataclass
class ReplayRun:
    """One `coffeeshop replay --all` (times are time.monotonic())."""

    number: int
    args: list[str]
    began: float
    ended: float | None = None
    returncode: int | None = None
    output: str = ""
    # The orders shadow table was last seen at swap_after and gone at swap_before: the
    # RENAME TABLE that swapped it in happened in between.
    swap_after: float | None = None
    swap_before: float | None = None
    leftovers: list[str] = field(default_factory=list)  # shadow tables after it exited

    @property
    def seconds(self) -> float | None:
        return None if self.ended is None else self.ended - self.began

    @property
    def swap_window(self) -> tuple[float, float] | None:
        if self.swap_after is None or self.swap_before is None:
            return None
        return self.swap_after - SWAP_MARGIN_S, self.swap_before + SWAP_MARGIN_S


@dataclass
class Outcome:
    seed: int
    plan: list[str]
    timeline: Timeline
    stats: LoadStats
    kills: list[Kill] = field(default_factory=list)
    redis_faults: list[str] = field(default_factory=list)
    redis_fault_pids: list[int] = field(default_factory=list)  # the projector each one hit
    problems: list[str] = field(default_factory=list)  # harness/thread errors, crashes
    unexpected_exits: list[str] = field(default_factory=list)
    final_stops: dict[str, int | None] = field(default_factory=dict)
    converged_after_s: float | None = None
    not_converged: str = ""
    ready_report: dict[str, Any] = field(default_factory=dict)
    projections_exit: int | None = None
    projections_output: str = ""
    bus_after: str = ""
    durations: dict[str, float] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    logs: str = ""
    replays: list[ReplayRun] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    bus_reading: bool | None = None  # the last projector read every group after traffic
    bus_rounds: int = 0  # rounds of one more order per restaurant that took
    bus_wait_s: float | None = None
    bus_final: str = ""

    def at(self, moment: float) -> str:
        """A time.monotonic() moment on the timeline."""
        return f"{moment - self.timeline.zero:.2f}s"

    def reads_during(self, began: float, ended: float) -> list[Read]:
        return [read for read in self.reads if read.overlaps(began, ended)]

    def describe_replays(self) -> list[str]:
        lines = []
        for run in self.replays:
            ended = "still running" if run.ended is None else self.at(run.ended)
            seconds = "?" if run.seconds is None else f"{run.seconds:.1f}s"
            window = run.swap_window
            swap = (
                "swap not observed"
                if window is None or run.swap_after is None or run.swap_before is None
                else f"orders swapped in between {self.at(run.swap_after)} and "
                f"{self.at(run.swap_before)}, {len(self.reads_during(*window))} GETs within "
                f"{SWAP_MARGIN_S}s of it"
            )
            during = (
                "" if run.ended is None else f", {len(self.reads_during(run.began, run.ended))}"
            )
            lines.append(
                f"replay {run.number} (coffeeshop {' '.join(run.args)}): "
                f"{self.at(run.began)} .. {ended} ({seconds}), exit "
                f"{run.returncode}{during} GETs during it; {swap}; shadow tables left: "
                f"{run.leftovers}" + (f"\n{run.output.strip()}" if run.output.strip() else "")
            )
        return lines

    def describe_reads(self) -> list[str]:
        if not self.reads:
            return ["no list GETs"]
        by_shop = Counter(read.restaurant for read in self.reads)
        failed = [read for read in self.reads if read.failed]
        empty = [read for read in self.reads if read.empty]
        slowest = max(self.reads, key=lambda read: read.ended - read.began)
        # Orders are never deleted: a total below one seen before is the list going back in
        # time (not asserted; a swapped-in rebuild may lag the live table by a few events).
        rewinds = []
        highest: dict[str, int] = {}
        for read in sorted(self.reads, key=lambda read: read.ended):
            if read.total is None:
                continue
            before = highest.get(read.restaurant, 0)
            if read.total < before:
                rewinds.append(f"{self.at(read.began)} {read.total} < {before}")
            highest[read.restaurant] = max(before, read.total)
        return [
            f"{len(self.reads)} list GETs ({dict(by_shop)}), {len(failed)} failed, "
            f"{len(empty)} empty; slowest {slowest.ended - slowest.began:.3f}s at "
            f"{self.at(slowest.began)}; totals going back: {len(rewinds)} {rewinds[:10]}",
            *(f"  failed at {self.at(r.began)}: {r.status} {r.error}" for r in failed[:10]),
            *(f"  empty at {self.at(r.began)}: {r.restaurant} total {r.total}" for r in empty[:10]),
        ]

    def summary(self) -> str:
        kills = "\n".join(
            f"  {k.service} #{k.incarnation} pid {k.pid}: returncode {k.returncode} after "
            f"{k.uptime_s:.1f} s up"
            + ("" if k.reading is None else f" (reading the bus: {k.reading})")
            + f", restarted as pid {k.restarted_pid}"
            for k in self.kills
        )
        return "\n".join(
            [
                f"FAULT_SEED={self.seed}  (logs in {self.logs})",
                "plan:",
                *(f"  {line}" for line in self.plan),
                "timeline:",
                *(f"  {line}" for line in self.timeline.lines),
                "kills:",
                kills,
                f"redis faults: {self.redis_faults}",
                f"load: {self.stats.describe()}",
                f"problems: {self.problems}",
                f"unexpected exits: {self.unexpected_exits}",
                f"graceful stops (return codes): {self.final_stops}",
                f"caught up after {self.converged_after_s} s {self.not_converged}",
                f"durations: { {k: round(v, 1) for k, v in self.durations.items()} }",
                "replays:",
                *(f"  {line}" for line in self.describe_replays()),
                "reads:",
                *(f"  {line}" for line in self.describe_reads()),
                f"coffeeshop projections (exit {self.projections_exit}):",
                self.projections_output,
                f"bus after the catch-up: {self.bus_after}",
                f"bus after one more order per restaurant: every group read by the last "
                f"projector: {self.bus_reading} (after {self.bus_wait_s} s, "
                f"{self.bus_rounds} round(s) of orders); {self.bus_final}",
                f"Redis faults hit projector pids {self.redis_fault_pids}",
            ]
        )


# -- the POS clients and the back office -------------------------------------------------------


@dataclass
class MenuItem:
    item_id: str
    category_id: str
    price_cents: int
    available: bool = True


@dataclass
class Restaurant:
    restaurant_id: str
    owner_token: str
    pos_keys: list[str]
    table_ids: list[str]
    categories: dict[str, str]  # name -> id
    items: list[MenuItem]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self, rng: random.Random, count: int) -> list[MenuItem]:
        with self.lock:
            available = [item for item in self.items if item.available]
            return rng.sample(available, min(count, len(available)))


class Load:
    """POS terminals and managers over HTTP. Every command carries an Idempotency-Key and is
    retried with it on transient failures (transport errors, 5xx), which are counted."""

    def __init__(self, base_url: str, stats: LoadStats, stop: threading.Event) -> None:
        self.base_url = base_url
        self.stats = stats
        self.stop = stop

    def client(self, headers: dict[str, str]) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=REQUEST_TIMEOUT_S)

    def command(
        self, client: httpx.Client, kind: str, method: str, path: str, body: object = None
    ) -> httpx.Response | None:
        """The 2xx response, or None (rejected by a business rule, or given up)."""
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        for attempt in range(ATTEMPTS):
            try:
                response = client.request(method, path, json=body, headers=headers)
            except httpx.TransportError as exc:
                self._count(self.stats.transient, f"{kind}: {type(exc).__name__}")
                time.sleep(0.2 * (attempt + 1))
                continue
            if response.status_code >= 500:
                self._count(self.stats.transient, f"{kind}: {response.status_code}")
                time.sleep(0.2 * (attempt + 1))
                continue
            if response.is_success:
                self._count(self.stats.ok, kind)
                if response.headers.get("idempotent-replayed") == "true":
                    self._count(self.stats.replayed, kind)
                return response
            self._count(self.stats.rejected, f"{kind}: {response.status_code}")
            return None
        self._count(self.stats.gave_up, kind)
        return None

    def _count(self, counter: Counter[str], key: str) -> None:
        with self.stats.lock:
            counter[key] += 1

    # -- a POS terminal ------------------------------------------------------------------------

    def pos(self, shop: Restaurant, key: str, seed: int) -> None:
        rng = random.Random(seed)
        with self.client({"X-API-Key": key}) as client:
            while not self.stop.is_set():
                self.one_order(client, shop, rng)
                time.sleep(rng.uniform(0.0, 0.05))

    def one_order(self, client: httpx.Client, shop: Restaurant, rng: random.Random) -> None:
        chosen = shop.pick(rng, rng.randint(1, 3))
        if not chosen:
            return
        lines = [(item, rng.choice((1, 1, 1, 2, 3))) for item in chosen]
        body: dict[str, Any] = {
            "items": [{"menu_item_id": item.item_id, "quantity": qty} for item, qty in lines]
        }
        if rng.random() < 0.3:
            body["table_id"] = rng.choice(shop.table_ids)
        if rng.random() < 0.3:
            body["customer_name"] = rng.choice(CUSTOMERS)
        placed = self.command(client, "place", "POST", "/api/v1/orders", body)
        if placed is None:
            return
        order_id = placed.json()["id"]
        position = placed.json()["position"]
        with self.stats.lock:
            self.stats.placed[shop.restaurant_id].add(order_id)
        estimate = sum(item.price_cents * qty for item, qty in lines)

        def step(kind: str, suffix: str, payload: object = None) -> bool:
            nonlocal position
            response = self.command(
                client, kind, "POST", f"/api/v1/orders/{order_id}{suffix}", payload
            )
            if response is None:
                return False
            position = response.json()["position"]
            return True

        if rng.random() < 0.3:
            extra = shop.pick(rng, 1)
            if extra:
                added = self.command(
                    client,
                    "add_item",
                    "POST",
                    f"/api/v1/orders/{order_id}/items",
                    {"menu_item_id": extra[0].item_id, "quantity": 1},
                )
                if added is not None:
                    position = added.json()["position"]
                    estimate += extra[0].price_cents
                    if rng.random() < 0.3:
                        line_id = added.json()["line_id"]
                        removed = self.command(
                            client,
                            "remove_item",
                            "DELETE",
                            f"/api/v1/orders/{order_id}/items/{line_id}",
                        )
                        if removed is not None:
                            position = removed.json()["position"]
                            estimate -= extra[0].price_cents
        fate = rng.random()
        reason = {"reason": rng.choice(("customer left", "wrong order", "kitchen closed"))}
        if fate < 0.07:
            step("cancel", "/cancel", reason)
            return
        if fate < 0.12 or not step("start", "/start"):
            return  # stays pending
        if fate < 0.17:
            step("cancel", "/cancel", reason)
            return
        if fate < 0.22 or not step("ready", "/ready"):
            return
        if fate < 0.26 or not step("serve", "/serve"):
            return
        if fate < 0.30:
            return  # served, not paid yet
        for _ in range(2):
            total = self.total_of(client, order_id, position) or estimate
            payment = {
                "method": rng.choice(("card", "card", "cash")),
                "amount_cents": total,
                "tip_cents": rng.choice((0, 0, 50, 100)),
            }
            if step("pay", "/pay", payment):
                return
        step("cancel", "/cancel", {"reason": "could not settle the bill"})

    def total_of(self, client: httpx.Client, order_id: str, position: int) -> int | None:
        """What the POS shows before payment: the read side, if it is fresh enough."""
        try:
            response = client.get(f"/api/v1/orders/{order_id}", params={"min_position": position})
        except httpx.TransportError as exc:
            self._count(self.stats.reads, f"get order: {type(exc).__name__}")
            return None
        stale = response.headers.get("x-projection-stale") == "true"
        self._count(self.stats.reads, f"get order: {response.status_code}{' stale' * stale}")
        if response.status_code != 200 or stale:
            return None
        total: int = response.json()["total_cents"]
        return total

    # -- a manager changing the menu -----------------------------------------------------------

    def manager(self, shop: Restaurant, seed: int) -> None:
        rng = random.Random(seed)
        specials = 0
        with self.client({"Authorization": f"Bearer {shop.owner_token}"}) as client:
            while not self.stop.wait(rng.uniform(0.3, 0.8)):
                action = rng.choice(("price", "price", "availability", "special", "rename"))
                with shop.lock:
                    item = rng.choice(shop.items)
                if action == "price":
                    price = max(100, item.price_cents + rng.choice((-30, 10, 20, 40)))
                    path = f"/api/v1/menu/items/{item.item_id}"
                    if self.command(client, "menu price", "PATCH", path, {"price_cents": price}):
                        with shop.lock:
                            item.price_cents = price
                elif action == "availability":
                    path = f"/api/v1/menu/items/{item.item_id}/availability"
                    wanted = not item.available
                    if self.command(
                        client, "menu availability", "POST", path, {"is_available": wanted}
                    ):
                        with shop.lock:
                            item.available = wanted
                elif action == "special" and specials < 5:
                    specials += 1
                    category = rng.choice(list(shop.categories.values()))
                    price = rng.randrange(200, 600, 10)
                    body = {
                        "name": f"Special {specials}",
                        "category_id": category,
                        "price_cents": price,
                    }
                    created = self.command(
                        client, "menu add item", "POST", "/api/v1/menu/items", body
                    )
                    if created is not None:
                        with shop.lock:
                            shop.items.append(MenuItem(created.json()["id"], category, price))
                else:
                    name, category_id = rng.choice(sorted(shop.categories.items()))
                    self.command(
                        client,
                        "menu rename",
                        "PATCH",
                        f"/api/v1/menu/categories/{category_id}",
                        {"name": f"{name} ({rng.randint(1, 99)})"},
                    )


def open_restaurant(base_url: str, number: int) -> Restaurant:
    """Signup, a token, POS keys, tables and a menu, over HTTP like a new customer would."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        email = f"owner-{number}-{uuid.uuid4().hex[:8]}@faults.example"
        signup = client.post(
            "/api/v1/signup",
            json={"restaurant_name": f"Fault Café {number}", "email": email, "password": PASSWORD},
        )
        assert signup.status_code == 201, signup.text
        token = client.post(
            "/api/v1/auth/token", data={"username": email, "password": PASSWORD}
        ).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        keys = []
        for till in range(POS_PER_RESTAURANT):
            created = client.post("/api/v1/api-keys", json={"name": f"Till {till + 1}"})
            assert created.status_code == 201, created.text
            keys.append(created.json()["key"])
        tables = []
        for label in ("T1", "T2", "T3"):
            created = client.post("/api/v1/tables", json={"label": label, "seats": 4})
            assert created.status_code == 201, created.text
            tables.append(created.json()["id"])
        categories: dict[str, str] = {}
        items: list[MenuItem] = []
        for position, (category, entries) in enumerate(MENU.items()):
            created = client.post(
                "/api/v1/menu/categories", json={"name": category, "sort_order": position}
            )
            assert created.status_code == 201, created.text
            categories[category] = created.json()["id"]
            for name, price in entries:
                body = {"name": name, "category_id": categories[category], "price_cents": price}
                created = client.post("/api/v1/menu/items", json=body)
                assert created.status_code == 201, created.text
                items.append(MenuItem(created.json()["id"], categories[category], price))
        return Restaurant(signup.json()["restaurant_id"], token, keys, tables, categories, items)


def listed(client: httpx.Client) -> int:
    """How many orders the first page of the restaurant's list shows."""
    response = client.get("/api/v1/orders", params={"limit": 20})
    response.raise_for_status()
    return len(response.json()["items"])


class Readers:
    """A back-office screen per restaurant: lists its orders every few tens of milliseconds,
    with the owner's token, recording every GET (a failure is any answer but 200, or none)."""

    def __init__(self, base_url: str, shops: list[Restaurant], seed: int) -> None:
        self.base_url = base_url
        self.stop = threading.Event()
        self.reads: list[Read] = []
        self._lock = threading.Lock()
        self.threads = [
            threading.Thread(
                target=self.read, args=(shop, seed * 100 + 70 + n), name=f"reader-{n}", daemon=True
            )
            for n, shop in enumerate(shops)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self) -> list[Read]:
        self.stop.set()
        for thread in self.threads:
            thread.join(REQUEST_TIMEOUT_S * 2)
        with self._lock:
            return sorted(self.reads, key=lambda read: read.began)

    def read(self, shop: Restaurant, seed: int) -> None:
        rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {shop.owner_token}"}
        with httpx.Client(
            base_url=self.base_url, headers=headers, timeout=REQUEST_TIMEOUT_S
        ) as client:
            while not self.stop.is_set():
                self._record(self._one(client, shop.restaurant_id))
                self.stop.wait(rng.uniform(*READ_PAUSE_S))

    def _one(self, client: httpx.Client, restaurant_id: str) -> Read:
        began = time.monotonic()
        try:
            response = client.get("/api/v1/orders", params={"limit": 20})
        except httpx.HTTPError as exc:
            return Read(restaurant_id, began, time.monotonic(), None, None, None, repr(exc))
        ended = time.monotonic()
        if response.status_code != 200:
            return Read(
                restaurant_id, began, ended, response.status_code, None, None, response.text[:300]
            )
        try:
            body = response.json()
            return Read(restaurant_id, began, ended, 200, len(body["items"]), body["total"])
        except (ValueError, KeyError, TypeError) as exc:
            return Read(
                restaurant_id, began, ended, 200, None, None, f"{exc!r}: {response.text[:300]}"
            )

    def _record(self, read: Read) -> None:
        with self._lock:
            self.reads.append(read)


# -- the faults --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """The seeded fault schedule. Kill moments are offsets after the process got somewhere,
    so each kill hits a working process: a projector in its start-up catch-up (after it
    connected to Redis, i.e. past its imports) or while it reads the bus (after it joined
    every consumer group); a relay once it is connected and publishing."""

    projector: list[tuple[str, float, float]]  # ("starting" | "reading", offset, pause)
    relay: list[tuple[float, float, float]]  # (idle before, seconds after connecting, pause)
    redis: list[tuple[float, str, float]]  # (at, "flush" | "restart", pause while down)
    replays: list[float]  # idle before each replay (the first: after the start of the load)

    @classmethod
    def draw(cls, seed: int) -> Plan:
        rng = random.Random(seed)
        phases = ["starting", "starting", "reading", "reading"]
        phases += [rng.choice(phases) for _ in range(PROJECTOR_KILLS - len(phases))]
        rng.shuffle(phases)
        projector = [
            (phase, rng.uniform(0.1, 1.5 if phase == "starting" else 2.0), rng.uniform(0.2, 1.2))
            for phase in phases
        ]
        relay = [
            (rng.uniform(1.0, 5.0), rng.uniform(0.2, 2.5), rng.uniform(0.2, 1.2))
            for _ in range(RELAY_KILLS)
        ]
        first = rng.uniform(3.0, 10.0)
        second = first + rng.uniform(6.0, 12.0)
        kinds = ["flush", "restart"]
        rng.shuffle(kinds)
        redis_faults = [
            (first, kinds[0], rng.uniform(0.5, 2.0)),
            (second, kinds[1], rng.uniform(0.5, 2.0)),
        ]
        # Drawn last, so that a seed's kills and Redis faults are what they were before.
        replays = [rng.uniform(1.0, 4.0)] + [rng.uniform(0.5, 2.0) for _ in range(REPLAYS - 1)]
        return cls(projector, relay, redis_faults, replays)

    def describe(self) -> list[str]:
        after = {"starting": "connecting", "reading": "reading every group"}
        return [
            "projector: "
            + ", ".join(
                f"kill {offset:.2f}s after {after[phase]}, down {pause:.2f}s"
                for phase, offset, pause in self.projector
            ),
            "relay: "
            + ", ".join(
                f"idle {i:.2f}s, kill {a:.2f}s after connecting, down {p:.2f}s"
                for i, a, p in self.relay
            ),
            "redis (or as soon as no projector is starting): "
            + ", ".join(
                f"{kind} at {at:.2f}s" + (f" (down {p:.2f}s)" if kind == "restart" else "")
                for at, kind, p in self.redis
            ),
            "replay --all: "
            + ", ".join(
                f"{idle:.2f}s after " + ("the start" if n == 0 else "the previous one finished")
                for n, idle in enumerate(self.replays)
            ),
        ]


class Faults:
    """Runs the plan: one thread for the projector, one for the relay, one for Redis, one
    for the replays (which run one after the other: a replay holds a named lock).

    Redis faults hit a projector that is up, never one that is starting (the ``startup``
    lock, held from a start until the projector reads every consumer group): a projector
    cannot start without Redis (it exits 1), and a group flushed between its start-up and
    its first read stops its subscribers at once, which would make "restarted" impossible to
    observe.
    """

    def __init__(
        self,
        plan: Plan,
        projector: Service,
        relay: Service,
        redis_server: RedisServer,
        outcome: Outcome,
        abort: threading.Event,
        services: Services,
        engine: Engine,
    ) -> None:
        self.plan = plan
        self.services = services
        self.engine = engine
        self.projector = projector
        self.relay = relay
        self.redis = redis_server
        self.outcome = outcome
        self.note = outcome.timeline.note
        self.abort = abort
        self.startup = threading.Lock()
        self.held = False  # by the projector thread: from a (re)start until it reads the bus
        self.seen_reading: set[int] = set()  # projector pids seen reading every group
        self.threads = [
            threading.Thread(
                target=self._guarded(self.projector_faults), name="projector-faults", daemon=True
            ),
            threading.Thread(
                target=self._guarded(self.relay_faults), name="relay-faults", daemon=True
            ),
            threading.Thread(
                target=self._guarded(self.redis_faults), name="redis-faults", daemon=True
            ),
            threading.Thread(target=self._guarded(self.replays), name="replays", daemon=True),
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    @property
    def done(self) -> bool:
        return not any(thread.is_alive() for thread in self.threads)

    def join(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _guarded(self, work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            except Aborted:
                pass
            except Exception:
                self.outcome.problems.append(f"{work.__name__}: {traceback.format_exc()}")
                self.note(f"{work.__name__} failed; see problems")
                self.abort.set()

        return run

    def _sleep(self, seconds: float) -> None:
        if self.abort.wait(max(0.0, seconds)):
            raise Aborted

    def _until(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not within {timeout_s:.0f} s")
            self._sleep(0.05)

    def _acquire_startup(self) -> None:
        """Bounded by the load's time cap (``abort``): the projector thread always lets go
        once its projector reads the bus or is killed."""
        while not self.startup.acquire(timeout=0.1):
            if self.abort.is_set():
                raise Aborted

    def _reading(self) -> bool:
        """The projector is alive and reads every consumer group."""
        return self._reading_or_unknown() is True

    def _reading_or_unknown(self) -> bool | None:
        """As :meth:`_reading`, or None when Redis does not answer."""
        if not self.projector.alive:
            return False
        try:
            with self.redis.client() as client:
                return reads_every_group(client, self.projector.pid)
        except Exception:
            return None

    def _connected(self, service: Service) -> bool:
        """Past its imports: it has a connection to Redis."""
        return service.alive and connected_to(service.pid, self.redis.port)

    def _kill(self, service: Service) -> tuple[Kill, bool | None]:
        reading = self._reading_or_unknown() if service is self.projector else None
        incarnation, pid, uptime = service.incarnations, service.pid, service.uptime_s
        if not service.alive:
            raise RuntimeError(f"{service.name} pid {pid} was not running when due to be killed")
        kill = Kill(service.name, incarnation, pid, service.kill(), uptime, reading)
        self.outcome.kills.append(kill)
        return kill, reading

    # -- projector -----------------------------------------------------------------------------

    def projector_faults(self) -> None:
        self.seen_reading.add(self.projector.pid)  # the first one reads before faults start
        try:
            for number, (phase, offset, pause) in enumerate(self.plan.projector, start=1):
                if phase == "reading":
                    self._until(self._ready, READY_TIMEOUT_S, "projector reading the bus")
                else:
                    self._until(
                        lambda: self._connected(self.projector), READY_TIMEOUT_S, "projector"
                    )
                deadline = time.monotonic() + offset
                while time.monotonic() < deadline:
                    self._ready()
                    self._sleep(0.05)
                kill, reading = self._kill(self.projector)
                if reading:
                    how = "reading the bus"
                elif reading is None:
                    how = "Redis is down"
                elif kill.pid in self.seen_reading:
                    how = "had read the bus; its subscribers stopped after a Redis fault"
                else:
                    how = "still starting: catch-up from the store"
                self.note(
                    f"projector kill {number}/{PROJECTOR_KILLS}: pid {kill.pid} returncode "
                    f"{kill.returncode} (up {kill.uptime_s:.1f}s, {how})"
                )
                self._release()
                self._sleep(pause)
                self._acquire_startup()
                self.held = True
                self.projector.start()
                kill.restarted_pid = self.projector.pid
                self.note(f"projector restarted: pid {self.projector.pid}")
            self._until(self._ready, READY_TIMEOUT_S, "the last projector reading the bus")
        finally:
            self._release()

    def _ready(self) -> bool:
        """Whether the projector reads every group; releases the start-up lock once it does."""
        if self.projector.pid in self.seen_reading:
            return True
        if not self._reading():
            return False
        self.seen_reading.add(self.projector.pid)
        self.note(
            f"projector pid {self.projector.pid} reads every group "
            f"{self.projector.uptime_s:.1f}s after its start"
        )
        self._release()
        return True

    def _release(self) -> None:
        if self.held:
            self.held = False
            self.startup.release()

    # -- relay ---------------------------------------------------------------------------------

    def relay_faults(self) -> None:
        for number, (idle, after, pause) in enumerate(self.plan.relay, start=1):
            self._sleep(idle)
            self._until(lambda: self._connected(self.relay), READY_TIMEOUT_S, "relay start")
            self._sleep(after)
            kill, _ = self._kill(self.relay)
            self.note(
                f"relay kill {number}/{RELAY_KILLS}: pid {kill.pid} returncode "
                f"{kill.returncode} (up {kill.uptime_s:.1f}s)"
            )
            self._sleep(pause)
            self.relay.start()  # the relay starts fine without Redis; no lock needed
            kill.restarted_pid = self.relay.pid
            self.note(f"relay restarted: pid {self.relay.pid}")

    # -- redis ---------------------------------------------------------------------------------

    def redis_faults(self) -> None:
        began = self.outcome.timeline.zero
        for at, kind, pause in self.plan.redis:
            self._sleep(began + at - time.monotonic())
            self._while_projector_runs(kind, pause)

    def _while_projector_runs(self, kind: str, pause: float) -> None:
        """The fault, while a projector is up (not starting, not dead), so that it is a
        running projector that has to live through it."""
        while True:
            self._acquire_startup()
            try:
                if self.projector.alive:
                    self._redis(kind, pause)
                    return
            finally:
                self.startup.release()
            self._sleep(0.1)

    def _redis(self, kind: str, pause: float) -> None:
        if kind == "flush":
            self.redis.flushall()
            self.note(f"redis FLUSHALL (projector pid {self.projector.pid} reading the bus)")
        else:
            self.note(f"redis SHUTDOWN NOSAVE (projector pid {self.projector.pid} reading the bus)")
            self.redis.stop()
            self._sleep(pause)
            self.redis.start()
            self.note(f"redis back on port {self.redis.port} after {pause:.2f}s")
        self.outcome.redis_faults.append(kind)
        self.outcome.redis_fault_pids.append(self.projector.pid)

    # -- replays -------------------------------------------------------------------------------

    def replays(self) -> None:
        for number, (idle, args) in enumerate(
            zip(self.plan.replays, REPLAY_COMMANDS, strict=True), start=1
        ):
            self._sleep(idle)
            self._replay(number, args)

    def _replay(self, number: int, args: list[str]) -> None:
        """`coffeeshop replay --all` to its end, while a watcher notes when the orders shadow
        table disappears, i.e. when RENAME TABLE swapped it in."""
        run = ReplayRun(number, args, time.monotonic())
        self.outcome.replays.append(run)
        self.note(f"replay {number}/{REPLAYS} started: coffeeshop {' '.join(args)}")
        finished = threading.Event()
        watcher = threading.Thread(
            target=self._watch_swap, args=(run, finished), name="swap-watch", daemon=True
        )
        watcher.start()
        try:
            done = self.services.command(args, self.outcome.env, timeout_s=REPLAY_TIMEOUT_S)
        finally:
            run.ended = time.monotonic()
            finished.set()
            watcher.join(10)
        run.returncode, run.output = done.returncode, done.stdout
        run.leftovers = self._shadow_tables()
        self.note(
            f"replay {number}/{REPLAYS} finished: exit {run.returncode} after "
            f"{run.seconds or 0:.1f}s"
            + ("" if run.swap_before is None else f", orders swapped in at ~{self._at(run)}")
        )

    def _at(self, run: ReplayRun) -> str:
        assert run.swap_after is not None
        assert run.swap_before is not None
        return self.outcome.at((run.swap_after + run.swap_before) / 2)

    def _watch_swap(self, run: ReplayRun, finished: threading.Event) -> None:
        shadow_of_orders = copy_name(orders_table, SHADOW)
        try:
            with self.engine.connect() as conn:
                while True:
                    checked = time.monotonic()
                    present = bool(
                        conn.execute(
                            text(
                                "SELECT COUNT(*) FROM information_schema.TABLES "
                                "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :name"
                            ),
                            {"name": shadow_of_orders},
                        ).scalar_one()
                    )
                    conn.rollback()
                    if present:
                        run.swap_after, run.swap_before = checked, None
                    elif run.swap_after is not None and run.swap_before is None:
                        run.swap_before = checked
                    if finished.wait(0.02):
                        return
        except Exception:
            self.outcome.problems.append(f"watching the swap: {traceback.format_exc()}")

    def _shadow_tables(self) -> list[str]:
        with self.engine.connect() as conn:
            names = conn.execute(
                text(
                    "SELECT TABLE_NAME FROM information_schema.TABLES "
                    "WHERE TABLE_SCHEMA = DATABASE()"
                )
            ).scalars()
            return sorted(name for name in names if name.endswith((SHADOW, SWAPPED_OUT)))


class Aborted(Exception):
    """The scenario is being cut short (a crash, a harness error or the time cap)."""


# -- the scenario, once per module -------------------------------------------------------------


def _supervise(services: list[Service], outcome: Outcome) -> bool:
    """Record processes that ended without us ending them; True if there was one."""
    crashed = False
    for service in services:
        exit_ = service.reap_unexpected()
        if exit_ is not None:
            crashed = True
            outcome.unexpected_exits.append(
                f"{service.name}: {exit_}\nour frames of its last traceback:\n"
                f"{_our_frames(service)}\n{service.tail()}"
            )
            outcome.timeline.note(f"{service.name} exited on its own: {exit_}")
    return crashed


def _our_frames(service: Service) -> str:
    """The project's own frames in the last traceback of the last incarnation's log (the
    tail alone is mostly driver frames)."""
    try:
        log = service.log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    last = log.rsplit(f"=== {service.name} #{service.incarnations} ===", 1)[-1]
    traceback_ = last.rsplit("Traceback (most recent call last):", 1)[-1]
    ours = f'File "{CODE_ROOT / "coffeeshop"}/'
    frames = [line.strip() for line in traceback_.splitlines() if line.strip().startswith(ours)]
    return "\n".join(f"  {frame}" for frame in frames) or "  (none)"


def _bus_health(server: RedisServer, projector: Service) -> str:
    """Which consumer groups the last projector reads, and what the dead ones left behind."""
    try:
        with server.client() as client:
            groups = consumers_by_group(client)
    except Exception as exc:
        return f"unknown: {exc!r}"
    mine = f"-{projector.pid}"
    read = sum(any(str(c["name"]).endswith(mine) for c in cs) for cs in groups.values())
    dead = [c for cs in groups.values() for c in cs if not str(c["name"]).endswith(mine)]
    stopped = projector.log_path.read_text(errors="replace").count("no longer exists")
    return (
        f"the last projector reads {read}/{len(groups)} groups; {len(dead)} consumers of "
        f"killed projectors remain with {sum(int(str(c['pending'])) for c in dead)} pending "
        f"entries; subscribers stopped for a vanished group (all incarnations): {stopped}"
    )


def _place_one_more(load: Load, shop: Restaurant) -> None:
    """One order at the first till, recorded like the POS clients' orders."""
    with load.client({"X-API-Key": shop.pos_keys[0]}) as client:
        item = shop.pick(random.Random(0), 1)
        assert item, f"nothing on the menu of {shop.restaurant_id} is available"
        body = {"items": [{"menu_item_id": item[0].item_id, "quantity": 1}]}
        placed = load.command(client, "place", "POST", "/api/v1/orders", body)
        assert placed is not None, f"could not place an order in {shop.restaurant_id}"
        with load.stats.lock:
            load.stats.placed[shop.restaurant_id].add(placed.json()["id"])


def _ready_report(base_url: str) -> dict[str, Any]:
    """The projections part of GET /health/ready (empty while it is not 200)."""
    response = httpx.get(f"{base_url}/health/ready", timeout=REQUEST_TIMEOUT_S)
    if response.status_code != 200:
        return {}
    report: dict[str, Any] = response.json().get("projections", {})
    return report


def _outbox_rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM outbox")).scalar_one())


@pytest.fixture(scope="module")
def scratch_engine(scratch_database_url: str) -> Iterator[Engine]:
    engine = make_engine(make_settings(database_url=scratch_database_url, redis_url=None))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def outcome(
    scratch_database_url: str,
    scratch_engine: Engine,
    private_redis: RedisServer,
    services: Services,
) -> Outcome:
    """The whole scenario, once: start, load under faults, catch up, stop. The checks below
    read what happened; a crash or a harness error fails every one of them at setup."""
    seed = int(os.environ.get("FAULT_SEED") or random.SystemRandom().randrange(1_000_000))
    plan = Plan.draw(seed)
    began = time.monotonic()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = service_env(
        scratch_database_url,
        private_redis.url,
        CONSISTENCY_TIMEOUT_MS="1000",
    )
    result = Outcome(seed, plan.describe(), Timeline(), LoadStats(), env=env)
    result.logs = str(services.cwd)
    print(f"\nFAULT_SEED={seed}", *result.plan, sep="\n  ", flush=True)

    api = services.add("api", ["serve", "--port", str(port)], env)
    relay = services.add("relay", ["relay"], env)
    projector = services.add("projector", ["projector"], env)
    everyone = [api, relay, projector]
    for service in everyone:
        service.start()
    wait_http_healthy(base_url, api, STARTUP_TIMEOUT_S)
    shops = [open_restaurant(base_url, number) for number in range(RESTAURANTS)]

    stop_load, abort = threading.Event(), threading.Event()
    load = Load(base_url, result.stats, stop_load)
    tills = [(shop, key) for shop in shops for key in shop.pos_keys]
    workers = [
        threading.Thread(
            target=load.pos, args=(shop, key, seed * 100 + n), name=f"pos-{n}", daemon=True
        )
        for n, (shop, key) in enumerate(tills)
    ] + [
        threading.Thread(
            target=load.manager, args=(shop, seed * 100 + 50 + n), name=f"mgr-{n}", daemon=True
        )
        for n, shop in enumerate(shops)
    ]
    faults = Faults(plan, projector, relay, private_redis, result, abort, services, scratch_engine)
    readers = Readers(base_url, shops, seed)
    for worker in workers:
        worker.start()
    try:
        # Redis creates a group's consumer on its first delivery: wait under load.
        with private_redis.client() as client:
            wait_until(
                lambda: reads_every_group(client, projector.pid), STARTUP_TIMEOUT_S, "projector"
            )
        wait_until(lambda: connected_to(relay.pid, private_redis.port), STARTUP_TIMEOUT_S, "relay")
        # From the moment each restaurant's list shows an order, it must never be empty again.
        for shop in shops:
            with httpx.Client(
                base_url=base_url,
                headers={"Authorization": f"Bearer {shop.owner_token}"},
                timeout=REQUEST_TIMEOUT_S,
            ) as client:
                wait_until(lambda: listed(client) > 0, STARTUP_TIMEOUT_S, "an order listed")
    except BaseException:
        stop_load.set()
        raise
    result.durations["setup"] = time.monotonic() - began
    result.timeline.zero = time.monotonic()
    faults.start()
    readers.start()
    try:
        while not abort.is_set():
            if _supervise(everyone, result):
                break
            elapsed = time.monotonic() - result.timeline.zero
            if faults.done and elapsed >= LOAD_MIN_S:
                break
            if elapsed >= LOAD_CAP_S:
                result.problems.append(f"the fault schedule did not finish in {LOAD_CAP_S:.0f} s")
                break
            time.sleep(0.2)
    finally:
        abort.set()
        stop_load.set()
        faults.join(30)
        for worker in workers:
            worker.join(REQUEST_TIMEOUT_S * ATTEMPTS)
        result.reads = readers.join()
    result.timeline.note(f"load stopped: {result.stats.describe()}")
    result.durations["load"] = time.monotonic() - result.timeline.zero
    _supervise(everyone, result)
    if result.problems or result.unexpected_exits:
        for service in everyone:
            service.stop()
        pytest.fail(f"the scenario broke down:\n{result.summary()}")

    def caught_up() -> bool:
        report = _ready_report(base_url)
        result.ready_report = report
        return (
            bool(report)
            and all(p["state"] == "live" and p["lag_events"] == 0 for p in report.values())
            and _outbox_rows(scratch_engine) == 0
        )

    settling = time.monotonic()
    try:
        result.converged_after_s = wait_until(caught_up, CONVERGE_TIMEOUT_S, "catch-up", 0.25)
        result.timeline.note(f"caught up after {result.converged_after_s:.1f}s")
    except TimeoutError as exc:
        result.not_converged = f"{exc}; last /health/ready projections: {result.ready_report}"
    result.durations["catch-up"] = time.monotonic() - settling
    result.bus_after = _bus_health(private_redis, projector)

    # Does the last projector still read the bus? Its consumers appear on their first
    # delivery, so orders go out until every group has one (bounded). One round is not
    # enough: after a Redis restart the projector recreates its groups at "$" within a
    # catch-up interval, and orders placed before that reach it through the store only.
    checking = time.monotonic()
    with private_redis.client() as redis_client:

        def delivered() -> bool:
            for shop in shops:
                _place_one_more(load, shop)
            result.bus_rounds += 1
            try:
                wait_until(lambda: reads_every_group(redis_client, projector.pid), 2.0, "", 0.1)
            except TimeoutError:
                return False
            return True

        try:
            result.bus_wait_s = wait_until(
                delivered, BUS_CHECK_TIMEOUT_S, "the last projector in every consumer group", 0.0
            )
            result.bus_reading = True
        except TimeoutError:
            result.bus_reading = False
    result.bus_final = _bus_health(private_redis, projector)
    result.timeline.note(f"after one more order each: {result.bus_final}")
    if result.converged_after_s is not None:  # and those orders reached the read side
        try:
            wait_until(caught_up, CONVERGE_TIMEOUT_S, "catch-up after the last orders", 0.25)
        except TimeoutError as exc:
            result.converged_after_s = None
            result.not_converged = f"{exc}; last /health/ready projections: {result.ready_report}"
    result.durations["bus check"] = time.monotonic() - checking
    shown = services.command(["projections"], env, timeout_s=60)
    result.projections_output = shown.stdout
    result.projections_exit = shown.returncode
    _supervise(everyone, result)
    for service in everyone:
        result.final_stops[service.name] = service.stop()
    result.durations["total"] = time.monotonic() - began
    print(result.summary(), flush=True)
    return result


# -- the checks --------------------------------------------------------------------------------


def test_each_killed_process_died_of_sigkill_and_came_back(outcome: Outcome) -> None:
    summary = outcome.summary()
    assert not outcome.problems, summary
    assert not outcome.unexpected_exits, summary
    by_service = Counter(kill.service for kill in outcome.kills)
    assert by_service == {"projector": PROJECTOR_KILLS, "relay": RELAY_KILLS}, summary
    for kill in outcome.kills:
        assert kill.returncode == -9, summary
        assert kill.restarted_pid is not None, summary
        assert kill.restarted_pid != kill.pid, summary
    assert sorted(outcome.redis_faults) == ["flush", "restart"], summary
    # The last incarnations ran until the end and stopped cleanly on SIGTERM.
    assert outcome.final_stops == {"relay": 0, "projector": 0, "api": 0}, summary


def test_the_pos_load_kept_working_through_the_faults(outcome: Outcome) -> None:
    stats, summary = outcome.stats, outcome.summary()
    print(f"load: {stats.describe()}")
    assert not stats.gave_up, summary  # the store is MariaDB: commands never stop working
    assert stats.commands >= MIN_COMMANDS, summary
    assert stats.ok["place"] >= MIN_ORDERS, summary
    for kind in ("place", "start", "ready", "serve", "pay", "cancel", "add_item", "menu price"):
        assert stats.ok[kind] > 0, f"no successful {kind!r}\n{summary}"


def test_the_projections_caught_up_with_the_store(outcome: Outcome) -> None:
    summary = outcome.summary()
    assert outcome.converged_after_s is not None, summary
    assert outcome.ready_report, summary
    # The operator's view agrees: every projection is listed, live.
    assert outcome.projections_exit == 0, summary
    listed = {
        line.split()[0]: line for line in outcome.projections_output.splitlines() if line.strip()
    }
    for name in outcome.ready_report:
        assert name in listed, summary
        assert " live " in f" {listed[name]} ", summary


def test_the_orders_read_table_matches_the_event_store(
    outcome: Outcome, scratch_engine: Engine
) -> None:
    summary = outcome.summary()
    with scratch_engine.connect() as conn:
        read = {
            row.order_id: (row.restaurant_id, row.status, row.version)
            for row in conn.execute(
                text("SELECT order_id, restaurant_id, status, version FROM orders")
            )
        }
        stored = conn.execute(
            text(
                "SELECT stream_id, restaurant_id, version, type FROM events "
                "WHERE stream_type = :stream ORDER BY stream_id, version"
            ),
            {"stream": ORDER_STREAM},
        ).all()
    implied: dict[str, tuple[str, str, int]] = {}
    for event in stored:
        before = implied.get(event.stream_id)
        if event.type in STATUS_AFTER:
            status = STATUS_AFTER[event.type]
        elif event.type in LINE_CHANGES and before is not None:
            status = before[1]
        else:
            pytest.fail(f"unexpected order event {event.type} v{event.version}; update the test")
        implied[event.stream_id] = (event.restaurant_id, status, event.version)
    placed = sum(1 for event in stored if event.type == OrderPlaced.event_type)

    assert placed == len(implied), summary
    assert len(read) == placed, f"{len(read)} orders rows, {placed} OrderPlaced\n{summary}"
    wrong = {
        order_id: {"read": read.get(order_id), "store": want}
        for order_id, want in implied.items()
        if read.get(order_id) != want
    }
    assert not wrong, f"{len(wrong)} orders differ, e.g. {list(wrong.items())[:5]}\n{summary}"
    # Every order the POS clients were told was placed is there, once (retries were replays).
    told = {order_id for ids in outcome.stats.placed.values() for order_id in ids}
    assert told == set(implied), summary


def test_verify_finds_no_drift_against_a_fresh_rebuild(
    outcome: Outcome, services: Services
) -> None:
    summary = outcome.summary()
    usage = services.command(["--help"], outcome.env, timeout_s=60).stdout
    if not re.search(r"^\s+verify\b", usage, re.MULTILINE):
        pytest.fail(
            "`coffeeshop verify` does not exist yet: this check needs it (exit 0 when every "
            f"live projection equals a fresh rebuild from the store).\n{usage}"
        )
    verified = services.command(["verify"], outcome.env, timeout_s=VERIFY_TIMEOUT_S)
    assert verified.returncode == 0, f"coffeeshop verify:\n{verified.stdout}\n{summary}"


def test_every_replay_under_load_rebuilt_and_swapped_in(outcome: Outcome) -> None:
    summary = outcome.summary()
    print(*outcome.describe_replays(), sep="\n")
    assert len(outcome.replays) == REPLAYS, summary
    for run in outcome.replays:
        assert run.returncode == 0, f"replay {run.number} failed\n{summary}"
        assert run.swap_window is not None, f"replay {run.number}: no swap seen\n{summary}"
        assert not run.leftovers, f"replay {run.number} left shadow tables\n{summary}"
    for before, after in zip(outcome.replays, outcome.replays[1:], strict=False):
        assert before.ended is not None, summary
        assert before.ended <= after.began, summary


def test_order_lists_never_failed_nor_came_back_empty_during_replays(outcome: Outcome) -> None:
    summary = outcome.summary()
    print(*outcome.describe_reads(), sep="\n")
    reads = outcome.reads
    # Every restaurant had orders listed before its reader started.
    assert {read.restaurant for read in reads} == set(outcome.stats.placed), summary
    failed = [read for read in reads if read.failed]
    assert not failed, f"{len(failed)} list GETs failed\n{summary}"
    empty = [read for read in reads if read.empty]
    assert not empty, f"{len(empty)} list GETs came back empty\n{summary}"
    for run in outcome.replays:
        assert run.ended is not None, summary
        during = outcome.reads_during(run.began, run.ended)
        print(f"replay {run.number}: {len(during)} list GETs while it ran")
        assert len(during) >= MIN_READS_PER_REPLAY, summary
        window = run.swap_window
        assert window is not None, summary
        assert outcome.reads_during(*window), f"no list GET around swap {run.number}\n{summary}"


def test_the_last_projector_reads_every_consumer_group(outcome: Outcome) -> None:
    """After all the kills and Redis faults, the projector still reads the bus: a consumer
    of its own in every group (those of killed projectors are only forgotten after 5 min)."""
    restarts = [kill.restarted_pid for kill in outcome.kills if kill.service == "projector"]
    last = restarts[-1] if restarts else None
    lived_through = [pid for pid in outcome.redis_fault_pids if pid == last]
    print(f"the last projector (pid {last}) lived through {len(lived_through)} Redis fault(s)")
    assert outcome.bus_reading is True, outcome.summary()
