"""Menu and daily report queries over HTTP, on MariaDB + Redis and on embedded SQLite.

Commands go through the command endpoints with the app's clock under the test's control;
the projections are then caught up from the store (``project``), so each test knows exactly
what the read side has applied.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from coffeeshop.api.app import create_app
from coffeeshop.api.container import Container, build_container
from coffeeshop.projections import daily_sales, menu
from coffeeshop.projections.projector import Projector
from coffeeshop.queries.cache import Cache
from tests.conftest import make_settings
from tests.e2e.helpers import Tenant, assert_problem, error_locs, new_tenant

STALE = "x-projection-stale"
TIMEOUT_MS = 200


class Clock:
    """The app's clock: real time (tokens are issued by it), or pinned to chosen instants
    while a test places and pays orders."""

    def __init__(self) -> None:
        self.pinned: datetime | None = None

    def __call__(self) -> datetime:
        return self.pinned or datetime.now(UTC)


@dataclass
class Site:
    """An app on one backend with a restaurant in Berlin, its people, and a rival restaurant."""

    client: TestClient
    container: Container
    clock: Clock
    owner: Tenant
    manager: Tenant
    staff: Tenant
    pos: dict[str, str]
    rival: Tenant

    def fresh(self, timezone: str = "Europe/Berlin") -> Tenant:
        """A restaurant of its own, for tests that look at a whole menu or a whole day."""
        return new_tenant(self.client, restaurant_name="Fresh Café", timezone=timezone)

    def project(self, *tenants: Tenant) -> None:
        """Bring the menu and daily_sales projections up to date for these restaurants."""
        store = self.container.store
        chosen = tenants or (self.owner, self.rival)
        projections = (menu.build(), daily_sales.build(self.container.identity.timezone_of))
        for projection in projections:
            projector = Projector(
                projection, self.container.engine, store, cache=self.container.cache
            )
            for tenant in chosen:
                projector.catch_up_restaurant(
                    tenant.restaurant_id, store.head(tenant.restaurant_id)
                )

    def head(self, tenant: Tenant) -> int:
        return self.container.store.head(tenant.restaurant_id)


def _site(client: TestClient, container: Container, clock: Clock) -> Site:
    owner = new_tenant(client, restaurant_name="Query Café", timezone="Europe/Berlin")
    key = client.post("/api/v1/api-keys", json={"name": "Till"}, headers=owner.headers)
    assert key.status_code == 201, key.text
    return Site(
        client=client,
        container=container,
        clock=clock,
        owner=owner,
        manager=owner.add_user("manager"),
        staff=owner.add_user("staff"),
        pos={"X-API-Key": key.json()["key"]},
        rival=new_tenant(client, restaurant_name="Rival Bistro", timezone="Europe/Berlin"),
    )


def _open(settings_overrides: dict[str, Any]) -> Iterator[Site]:
    settings = make_settings(consistency_timeout_ms=TIMEOUT_MS, **settings_overrides)
    clock = Clock()
    container = build_container(settings, clock)
    # read_side=False: no in-process relay/projectors; each test projects what it needs.
    with TestClient(create_app(settings, container, read_side=False)) as client:
        yield _site(client, container, clock)


@pytest.fixture(scope="module")
def mysql_site(mysql_engine: Any) -> Iterator[Site]:
    yield from _open({})


@pytest.fixture(scope="module")
def sqlite_site(embedded_url: str) -> Iterator[Site]:
    yield from _open({"database_url": embedded_url, "redis_url": None})


@pytest.fixture(params=["mysql", "sqlite"])
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    result: Site = request.getfixturevalue(f"{request.param}_site")
    yield result
    result.clock.pinned = None


# -- helpers ------------------------------------------------------------------------------------


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def create_category(site: Site, who: Tenant, name: str, sort_order: int = 0) -> str:
    body = {"name": name, "sort_order": sort_order}
    return str(
        ok(site.client.post("/api/v1/menu/categories", json=body, headers=who.headers), 201)["id"]
    )


def create_item(
    site: Site, who: Tenant, category_id: str, name: str, price_cents: int = 350, **extra: Any
) -> str:
    body = {"name": name, "category_id": category_id, "price_cents": price_cents, **extra}
    return str(
        ok(site.client.post("/api/v1/menu/items", json=body, headers=who.headers), 201)["id"]
    )


def get(site: Site, path: str, who: Tenant | dict[str, str], **params: Any) -> httpx.Response:
    headers = who.headers if isinstance(who, Tenant) else who
    response: httpx.Response = site.client.get(path, params=params, headers=headers)
    return response


def at(site: Site, year: int, month: int, day: int, hour: int, minute: int) -> None:
    site.clock.pinned = datetime(year, month, day, hour, minute, tzinfo=UTC)


def place(site: Site, who: Tenant, *lines: tuple[str, int]) -> str:
    body = {"items": [{"menu_item_id": item, "quantity": qty} for item, qty in lines]}
    return str(ok(site.client.post("/api/v1/orders", json=body, headers=who.headers), 201)["id"])


def step(site: Site, who: Tenant, order_id: str, action: str, body: Any = None) -> None:
    ok(site.client.post(f"/api/v1/orders/{order_id}/{action}", json=body, headers=who.headers))


def pay(site: Site, who: Tenant, order_id: str, amount: int, tip: int = 0) -> None:
    for action in ("start", "ready", "serve"):
        step(site, who, order_id, action)
    step(site, who, order_id, "pay", {"method": "card", "amount_cents": amount, "tip_cents": tip})


# -- GET /menu -----------------------------------------------------------------------------------


def test_the_menu_lists_categories_in_order_with_their_current_items(site: Site) -> None:
    shop = site.fresh()
    pastries = create_category(site, shop, "Pastries", sort_order=2)
    coffee = create_category(site, shop, "Coffee", sort_order=1)
    bakery = create_category(site, shop, "Bakery", sort_order=2)  # same order: by name
    empty = create_category(site, shop, "Empty", sort_order=0)
    seasonal = create_category(site, shop, "Seasonal", sort_order=-1)
    latte = create_item(site, shop, coffee, "Latte", 420, description="Double shot")
    espresso = create_item(site, shop, coffee, "Espresso", 280)
    croissant = create_item(site, shop, pastries, "Croissant", 300, is_available=False)
    gone = create_item(site, shop, coffee, "Americano", 300)
    pumpkin = create_item(site, shop, seasonal, "Pumpkin pie", 500)
    ok(site.client.delete(f"/api/v1/menu/items/{gone}", headers=shop.headers))
    ok(site.client.delete(f"/api/v1/menu/items/{pumpkin}", headers=shop.headers))
    ok(site.client.delete(f"/api/v1/menu/categories/{seasonal}", headers=shop.headers))
    site.project(shop)

    response = get(site, "/api/v1/menu", shop)
    assert response.headers["content-type"] == "application/json"
    assert ok(response) == {
        "categories": [
            {"id": empty, "name": "Empty", "sort_order": 0, "items": []},
            {
                "id": coffee,
                "name": "Coffee",
                "sort_order": 1,
                "items": [
                    {
                        "id": espresso,
                        "name": "Espresso",
                        "description": "",
                        "price_cents": 280,
                        "is_available": True,
                    },
                    {
                        "id": latte,
                        "name": "Latte",
                        "description": "Double shot",
                        "price_cents": 420,
                        "is_available": True,
                    },
                ],
            },
            {"id": bakery, "name": "Bakery", "sort_order": 2, "items": []},
            {
                "id": pastries,
                "name": "Pastries",
                "sort_order": 2,
                "items": [
                    {
                        "id": croissant,
                        "name": "Croissant",
                        "description": "",
                        "price_cents": 300,
                        "is_available": False,  # sold out, still listed
                    }
                ],
            },
        ]
    }


def test_every_role_reads_the_menu_and_only_its_own(site: Site) -> None:
    create_item(site, site.rival, create_category(site, site.rival, "Rival secrets"), "Secret")
    create_category(site, site.owner, "House")
    site.project()
    for who in (site.owner, site.manager, site.staff, site.pos):
        names = [c["name"] for c in ok(get(site, "/api/v1/menu", who))["categories"]]
        assert "House" in names
        assert "Rival secrets" not in names
    assert_problem(site.client.get("/api/v1/menu"), 401)


def test_a_menu_change_is_visible_on_the_next_read(site: Site) -> None:
    shop = site.fresh()
    coffee = create_category(site, shop, "Coffee")
    latte = create_item(site, shop, coffee, "Latte", 420)
    site.project(shop)
    assert ok(get(site, "/api/v1/menu", shop))["categories"][0]["items"][0]["price_cents"] == 420
    assert ok(get(site, "/api/v1/menu", shop))["categories"][0]["items"][0]["price_cents"] == 420

    changed = site.client.patch(
        f"/api/v1/menu/items/{latte}", json={"price_cents": 460}, headers=shop.headers
    )
    position = ok(changed)["position"]
    site.project(shop)
    after = ok(get(site, "/api/v1/menu", shop, min_position=position))
    assert after["categories"][0]["items"][0]["price_cents"] == 460


class Counting:
    """Counts menu documents: served from the cache (hits), or read from the tables because
    the cache had none (misses, which only the tables' path looks up)."""

    def __init__(self, inner: Cache) -> None:
        self.inner = inner
        self.hits = self.misses = 0

    def get(self, key: str) -> bytes | None:
        value = self.inner.get(key)
        if key.startswith("menu:"):
            self.hits += value is not None
            self.misses += value is None
        return value

    async def aget(self, key: str) -> bytes | None:
        value = await self.inner.aget(key)
        if key.startswith("menu:"):
            self.hits += value is not None
        return value

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        self.inner.set(key, value, ttl_s)

    def add(self, key: str, value: bytes, ttl_s: int) -> None:
        self.inner.add(key, value, ttl_s)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def counting(site: Site) -> Iterator[Counting]:
    original = site.container.cache
    site.container.cache = Counting(original)
    yield site.container.cache
    site.container.cache = original


def test_the_second_read_is_served_from_the_cache(site: Site, counting: Counting) -> None:
    shop = site.fresh()
    coffee = create_category(site, shop, "Coffee")
    site.project(shop)
    first = get(site, "/api/v1/menu", shop)
    assert (counting.hits, counting.misses) == (0, 1)
    second = get(site, "/api/v1/menu", shop)
    assert (counting.hits, counting.misses) == (1, 1)
    assert second.content == first.content

    create_item(site, shop, coffee, "Flat white")
    site.project(shop)
    third = ok(get(site, "/api/v1/menu", shop))
    assert (counting.hits, counting.misses) == (1, 2)  # a new generation: a new key
    assert [i["name"] for i in third["categories"][0]["items"]] == ["Flat white"]


def test_with_redis_unreachable_the_menu_still_answers(mysql_site: Site) -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:1/0")
    container = build_container(settings)
    with TestClient(create_app(settings, container, read_side=False)) as client:
        coffee = create_category(mysql_site, mysql_site.owner, "Redis-less")
        mysql_site.project(mysql_site.owner)
        started = time.monotonic()
        for _ in range(3):
            response = client.get("/api/v1/menu", headers=mysql_site.owner.headers)
            assert response.status_code == 200, response.text
            assert coffee in [c["id"] for c in response.json()["categories"]]
        assert time.monotonic() - started < 2.0


# -- GET /menu/categories and /menu/items ----------------------------------------------------------


def test_categories_are_paginated_by_offset_and_by_cursor(site: Site) -> None:
    shop = site.fresh()
    created = [create_category(site, shop, f"Cat {n}", sort_order=n % 3) for n in range(7)]
    site.project(shop)
    expected = ok(get(site, "/api/v1/menu/categories", shop, limit=50))
    assert expected["total"] == 7
    assert expected["has_more"] is False
    assert expected["next_cursor"] is None
    ordered = [(c["sort_order"], c["name"]) for c in expected["items"]]
    assert ordered == sorted(ordered)
    assert {c["id"] for c in expected["items"]} == set(created)
    assert set(expected["items"][0]) == {"id", "name", "sort_order", "version", "updated_at"}

    page = ok(get(site, "/api/v1/menu/categories", shop, skip=2, limit=3))
    assert (page["skip"], page["limit"], page["total"], page["has_more"]) == (2, 3, 7, True)
    assert page["items"] == expected["items"][2:5]

    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = ok(get(site, "/api/v1/menu/categories", shop, **params))
        seen += page["items"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == expected["items"]


def test_items_filter_by_category_availability_and_name(site: Site) -> None:
    shop = site.fresh()
    coffee = create_category(site, shop, "Coffee")
    tea = create_category(site, shop, "Tea")
    latte = create_item(site, shop, coffee, "Caffè Latte", 420)
    mocha = create_item(site, shop, coffee, "Mocha", 450, is_available=False)
    green = create_item(site, shop, tea, "Green tea", 300)
    percent = create_item(site, shop, tea, "100% Matcha", 500)
    archived = create_item(site, shop, tea, "Latte macchiato", 380)
    ok(site.client.delete(f"/api/v1/menu/items/{archived}", headers=shop.headers))
    site.project(shop)

    def ids(**params: Any) -> list[str]:
        page = ok(get(site, "/api/v1/menu/items", shop, **params))
        assert page["total"] == len(page["items"])
        return [item["id"] for item in page["items"]]

    assert ids() == [percent, latte, green, mocha]  # by name; the archived item is gone
    assert ids(category_id=coffee) == [latte, mocha]
    assert ids(is_available="false") == [mocha]
    assert ids(is_available="true", category_id=tea) == [percent, green]
    assert ids(q="LATTE") == [latte]  # case-insensitive "name contains"
    assert ids(q="caffè") == [latte]
    assert ids(q="%") == [percent]  # a literal %, not a wildcard
    assert ids(q="_") == []
    assert ids(category_id=str(uuid.uuid4())) == []

    item = ok(get(site, "/api/v1/menu/items", shop, q="mocha"))["items"][0]
    assert item == {
        "id": mocha,
        "category_id": coffee,
        "name": "Mocha",
        "description": "",
        "price_cents": 450,
        "is_available": False,
        "version": 1,
        "updated_at": item["updated_at"],
    }
    datetime.fromisoformat(item["updated_at"].replace("Z", "+00:00"))


def test_items_page_by_cursor_through_everything(site: Site) -> None:
    shop = site.fresh()
    coffee = create_category(site, shop, "Coffee")
    for name in ["b", "A", "a", "c", "B", "d", "a"]:
        create_item(site, shop, coffee, f"{name} item")
    site.project(shop)
    everything = ok(get(site, "/api/v1/menu/items", shop, limit=50))["items"]
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = ok(get(site, "/api/v1/menu/items", shop, **params))
        seen += page["items"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert [i["id"] for i in seen] == [i["id"] for i in everything]
    assert len(seen) == 7


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"limit": 51}, "limit"),
        ({"limit": 0}, "limit"),
        ({"skip": -1}, "skip"),
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": "WyJ4Il0"}, "cursor"),  # ["x"]: well formed, wrong shape
        ({"is_available": "maybe"}, "is_available"),
        ({"category_id": "nope"}, "category_id"),
        ({"q": ""}, "q"),
        ({"q": "x" * 101}, "q"),
    ],
)
def test_bad_list_parameters_are_422(mysql_site: Site, params: dict[str, Any], loc: str) -> None:
    body = assert_problem(get(mysql_site, "/api/v1/menu/items", mysql_site.owner, **params), 422)
    assert ["query", loc] in error_locs(body)


def test_one_item_has_an_etag_and_other_items_are_404(site: Site) -> None:
    coffee = create_category(site, site.owner, "Single")
    latte = create_item(site, site.owner, coffee, "Single latte", 420)
    ok(
        site.client.patch(
            f"/api/v1/menu/items/{latte}", json={"price_cents": 430}, headers=site.owner.headers
        )
    )
    archived = create_item(site, site.owner, coffee, "Single archived")
    ok(site.client.delete(f"/api/v1/menu/items/{archived}", headers=site.owner.headers))
    theirs = create_item(site, site.rival, create_category(site, site.rival, "Theirs"), "Theirs")
    site.project()

    response = get(site, f"/api/v1/menu/items/{latte}", site.pos)
    body = ok(response)
    assert (body["id"], body["price_cents"], body["version"]) == (latte, 430, 2)
    assert response.headers["etag"] == '"2"'

    for missing in (archived, theirs, str(uuid.uuid4())):
        assert_problem(get(site, f"/api/v1/menu/items/{missing}", site.owner), 404)
    assert ok(get(site, f"/api/v1/menu/items/{theirs}", site.rival))["name"] == "Theirs"
    assert_problem(get(site, "/api/v1/menu/items/not-a-uuid", site.owner), 422)


# -- read-your-writes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v1/menu", "/api/v1/menu/categories", "/api/v1/menu/items", "/api/v1/reports/daily"],
)
def test_min_position_waits_then_flags_a_stale_answer(site: Site, path: str) -> None:
    create_category(site, site.owner, "Positions")
    site.project()
    params = {"date": "2026-03-10"} if "reports" in path else {}
    head = site.head(site.owner)

    fresh = get(site, path, site.manager, min_position=head, **params)
    assert fresh.status_code == 200, fresh.text
    assert STALE not in fresh.headers

    started = time.monotonic()
    ahead = get(site, path, site.manager, min_position=head + 1000, **params)
    assert ahead.status_code == 200, ahead.text
    assert ahead.headers[STALE] == "true"
    assert time.monotonic() - started >= TIMEOUT_MS / 1000

    assert_problem(get(site, path, site.manager, min_position=-1, **params), 422)


# -- GET /reports/daily ----------------------------------------------------------------------------


def test_the_daily_report_is_in_the_restaurants_time_zone(site: Site) -> None:
    shop = site.fresh("Europe/Berlin")
    food = create_category(site, shop, "Food")
    latte = create_item(site, shop, food, "Latte", 450)
    bagel = create_item(site, shop, food, "Bagel", 250)

    at(site, 2026, 3, 14, 23, 30)  # Saturday 23:30 UTC = Sunday 00:30 in Berlin
    first = place(site, shop, (latte, 2), (bagel, 1))
    at(site, 2026, 3, 14, 23, 50)
    pay(site, shop, first, amount=1150, tip=100)
    at(site, 2026, 3, 15, 13, 15)  # 14:15 local
    second = place(site, shop, (latte, 1))
    pay(site, shop, second, amount=450, tip=25)
    at(site, 2026, 3, 15, 16, 0)  # 17:00 local
    cancelled = place(site, shop, (bagel, 3))
    step(site, shop, cancelled, "cancel", {"reason": "left"})
    at(site, 2026, 3, 15, 17, 0)
    place(site, shop, (bagel, 1))  # placed, never paid
    site.project(shop)

    sunday = ok(get(site, "/api/v1/reports/daily", shop, date="2026-03-15"))
    assert {k: v for k, v in sunday.items() if k not in {"top_items", "by_hour"}} == {
        "date": "2026-03-15",
        "orders": 4,
        "paid_orders": 2,
        "cancelled_orders": 1,
        "revenue_cents": 1600,
        "tips_cents": 125,
        "average_ticket_cents": 800,
    }
    assert sunday["top_items"] == [
        {"menu_item_id": latte, "name": "Latte", "quantity": 3, "revenue_cents": 1350},
        {"menu_item_id": bagel, "name": "Bagel", "quantity": 1, "revenue_cents": 250},
    ]
    assert len(sunday["by_hour"]) == 24
    busy = {0: (1, 1150), 14: (1, 450), 17: (1, 0), 18: (1, 0)}  # 18:00: the open order
    assert sunday["by_hour"] == [
        {"hour": h, "orders": busy.get(h, (0, 0))[0], "revenue_cents": busy.get(h, (0, 0))[1]}
        for h in range(24)
    ]

    saturday = ok(get(site, "/api/v1/reports/daily", shop, date="2026-03-14"))
    assert saturday["orders"] == saturday["paid_orders"] == saturday["revenue_cents"] == 0
    assert saturday["top_items"] == []
    assert saturday["by_hour"] == [{"hour": h, "orders": 0, "revenue_cents": 0} for h in range(24)]


def test_reports_need_a_manager_and_show_only_the_callers_restaurant(site: Site) -> None:
    food = create_category(site, site.owner, "Report food")
    muffin = create_item(site, site.owner, food, "Report muffin", 300)
    at(site, 2026, 4, 2, 9, 0)
    order = place(site, site.owner, (muffin, 2))
    pay(site, site.owner, order, amount=600)
    site.project()

    mine = ok(get(site, "/api/v1/reports/daily", site.manager, date="2026-04-02"))
    assert ok(get(site, "/api/v1/reports/daily", site.owner, date="2026-04-02")) == mine
    assert mine["revenue_cents"] >= 600
    assert muffin in [item["menu_item_id"] for item in mine["top_items"]]

    theirs = ok(get(site, "/api/v1/reports/daily", site.rival, date="2026-04-02"))
    assert (theirs["orders"], theirs["revenue_cents"], theirs["top_items"]) == (0, 0, [])

    assert_problem(get(site, "/api/v1/reports/daily", site.staff, date="2026-04-02"), 403)
    assert_problem(get(site, "/api/v1/reports/daily", site.pos, date="2026-04-02"), 403)
    assert_problem(site.client.get("/api/v1/reports/daily", params={"date": "2026-04-02"}), 401)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"date": ""},
        {"date": "2026-02-30"},
        {"date": "15-03-2026"},
        {"date": "2026-3-5"},
        {"date": "2026-03-15T00:00"},
        {"date": "\uff11\uff12\uff13\uff14-01-01"},  # fullwidth digits
        {"date": "1700000000"},
    ],
)
def test_the_report_date_must_be_a_calendar_date(mysql_site: Site, params: dict[str, str]) -> None:
    response = mysql_site.client.get(
        "/api/v1/reports/daily", params=params, headers=mysql_site.manager.headers
    )
    body = assert_problem(response, 422)
    assert ["query", "date"] in error_locs(body)
