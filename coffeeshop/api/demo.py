"""A realistic demo restaurant, built through the command side like any POS would."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from coffeeshop.api.container import Container, build_container
from coffeeshop.api.identity.principal import Principal
from coffeeshop.api.identity.roles import Role
from coffeeshop.api.identity.schemas import (
    ApiKeyCreate,
    SignupCreate,
    TableCreate,
    UserCreate,
)
from coffeeshop.api.settings import Settings
from coffeeshop.commands.handling import CommandContext
from coffeeshop.commands.models import (
    AvailabilityUpdate,
    CancellationCreate,
    CategoryCreate,
    MenuItemCreate,
    OrderCreate,
    OrderItemCreate,
    PaymentCreate,
)

MENU: dict[str, list[tuple[str, int]]] = {
    "Coffee": [
        ("Espresso", 250),
        ("Double espresso", 320),
        ("Americano", 300),
        ("Cappuccino", 380),
        ("Flat white", 400),
        ("Latte", 420),
        ("Mocha", 450),
        ("Cortado", 360),
    ],
    "Tea": [
        ("English breakfast", 280),
        ("Earl grey", 280),
        ("Green tea", 300),
        ("Chai latte", 420),
        ("Matcha latte", 460),
        ("Peppermint", 280),
    ],
    "Cold drinks": [
        ("Iced latte", 450),
        ("Cold brew", 430),
        ("Lemonade", 350),
        ("Orange juice", 380),
        ("Sparkling water", 250),
        ("Iced tea", 320),
    ],
    "Pastries": [
        ("Croissant", 290),
        ("Pain au chocolat", 320),
        ("Cinnamon bun", 350),
        ("Blueberry muffin", 330),
        ("Almond croissant", 380),
        ("Scone", 300),
        ("Banana bread", 340),
    ],
    "Breakfast": [
        ("Avocado toast", 950),
        ("Granola bowl", 750),
        ("Eggs Benedict", 1150),
        ("Bacon roll", 650),
        ("Porridge", 600),
        ("Shakshuka", 1100),
    ],
    "Lunch": [
        ("Soup of the day", 750),
        ("Grilled cheese", 850),
        ("Chicken sandwich", 1050),
        ("Caesar salad", 1100),
        ("Quiche", 950),
        ("Falafel wrap", 950),
        ("Club sandwich", 1150),
    ],
}
CUSTOMERS = [
    "José",
    "Zoë",
    "王小明",
    "Anna",
    "Liam",
    "Priya",
    "Noah",
    "Sofia",
    "Mateo",
    "Aiko",
    "Olivia",
    "Ahmed",
    "Emma",
    "Lucas",
    "Chloé",
    "Ivan",
]
CANCEL_REASONS = ["customer left", "wrong order", "kitchen ran out", "duplicate ticket"]


class DemoClock:
    """The demo walks through 30 days; commands see this clock as 'now'."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class DemoSummary:
    restaurant_id: str
    owner_email: str
    password: str
    pos_key: str
    orders: int
    events: int


def build_demo(settings: Settings, orders: int, days: int = 30, seed: int = 2026) -> DemoSummary:
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not security
    start = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    clock = DemoClock(start - timedelta(days=days))
    container = build_container(settings, clock)
    try:
        return _populate(container, clock, rng, orders, days)
    finally:
        container.close()


def _populate(
    container: Container, clock: DemoClock, rng: random.Random, orders: int, days: int
) -> DemoSummary:
    tag = uuid.uuid4().hex[:6]
    password = "coffeeshop-demo"  # noqa: S105 - demo data, printed for the user
    owner_email = f"owner+{tag}@demo.coffeeshop.example"
    signup = container.identity.signup(
        SignupCreate(
            restaurant_name="Café Zoë",
            email=owner_email,
            password=password,
            timezone="Europe/Berlin",
            currency="EUR",
        )
    )
    owner = Principal(signup.restaurant_id, Role.OWNER, user_id=signup.user_id)
    for role, name in ((Role.MANAGER, "manager"), (Role.STAFF, "barista"), (Role.STAFF, "chef")):
        container.identity.create_user(
            owner,
            UserCreate(
                email=f"{name}+{tag}@demo.coffeeshop.example",
                password=password,
                role=role,
            ),
        )
    pos_key = container.identity.create_api_key(owner, ApiKeyCreate(name="Counter POS")).key
    tables = [
        container.identity.create_table(
            owner, TableCreate(label=f"T{n}", seats=rng.choice([2, 2, 4, 4, 6]))
        ).id
        for n in range(1, 13)
    ]

    ctx = CommandContext(signup.restaurant_id, actor=f"user:{signup.user_id}", request_id="demo")
    items: list[str] = []
    for position, (category, entries) in enumerate(MENU.items()):
        category_id = container.menu.create_category(
            ctx, CategoryCreate(name=category, sort_order=position)
        ).body["id"]
        for name, price in entries:
            items.append(
                container.menu.add_item(
                    ctx,
                    MenuItemCreate(
                        name=name,
                        category_id=category_id,
                        price_cents=price,
                        description=f"House {name.lower()}",
                    ),
                ).body["id"]
            )

    shop = _Shop(container, ctx, clock, rng, items, tables)
    placed = 0
    per_day = max(1, orders // days)
    for day in range(days):
        opening = clock.start + timedelta(days=day)
        for minute in sorted(rng.sample(range(12 * 60), min(per_day, 12 * 60))):
            # Time only moves forward: a busy spell pushes the next tickets later.
            clock.now = max(clock.now, opening + timedelta(minutes=minute))
            _one_order(shop)
            placed += 1
        if day == days // 2:  # mid-month, the croissants sell out for a while
            container.menu.set_availability(ctx, items[20], AvailabilityUpdate(is_available=False))
    events = container.store.head(signup.restaurant_id)
    return DemoSummary(signup.restaurant_id, owner_email, password, pos_key, placed, events)


@dataclass(frozen=True)
class _Shop:
    container: Container
    ctx: CommandContext
    clock: DemoClock
    rng: random.Random
    items: list[str]
    tables: list[str]


def _one_order(shop: _Shop) -> None:
    container, ctx, clock, rng = shop.container, shop.ctx, shop.clock, shop.rng
    items, tables = shop.items, shop.tables
    lines = [
        OrderItemCreate(menu_item_id=uuid.UUID(item), quantity=rng.choice([1, 1, 1, 2, 3]))
        for item in rng.sample([i for i in items if i != items[20]], rng.randint(1, 4))
    ]
    body = OrderCreate(
        table_id=uuid.UUID(rng.choice(tables)) if rng.random() < 0.6 else None,
        customer_name=rng.choice(CUSTOMERS) if rng.random() < 0.5 else None,
        items=lines,
    )
    order_id = container.orders.place(ctx, body).body["id"]
    if rng.random() < 0.06:
        container.orders.cancel(
            ctx, order_id, CancellationCreate(reason=rng.choice(CANCEL_REASONS))
        )
        return
    for step in (container.orders.start, container.orders.mark_ready, container.orders.serve):
        clock.now += timedelta(minutes=rng.randint(1, 6))
        step(ctx, order_id)
    total = container.orders.total_of(ctx, order_id)
    tip = rng.choice([0, 0, 0, 50, 100, 200, round(total * 0.1)])
    clock.now += timedelta(minutes=rng.randint(5, 40))
    container.orders.pay(
        ctx,
        order_id,
        PaymentCreate(
            method=rng.choice(["card", "card", "card", "cash", "other"]),
            amount_cents=total,
            tip_cents=tip,
        ),
    )
