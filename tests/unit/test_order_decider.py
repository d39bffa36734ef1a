"""Order decider: given past events, when a command, then these events (or this error)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import reduce

import pytest

from coffeeshop.commands.errors import DomainError, InvalidState, NotFound, RuleViolation
from coffeeshop.commands.menu_item import MenuItem
from coffeeshop.commands.order import (
    AddItem,
    Cancel,
    LineRequest,
    MarkReady,
    Order,
    OrderCommand,
    Pay,
    PlaceOrder,
    RemoveItem,
    Serve,
    StartPreparation,
    Status,
    decide,
    evolve,
)
from coffeeshop.events.orders import (
    OrderCancelled,
    OrderItemAdded,
    OrderItemRemoved,
    OrderLine,
    OrderPaid,
    OrderPlaced,
    OrderPreparationStarted,
    OrderReady,
    OrderServed,
)
from coffeeshop.events.registry import DomainEvent

EARLIER = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
NOW = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)

LATTE = MenuItem(
    menu_item_id="m1",
    category_id="c1",
    name="Latte",
    price_cents=350,
    is_available=True,
    exists=True,
)
MUFFIN = MenuItem(
    menu_item_id="m2",
    category_id="c2",
    name="Muffin",
    price_cents=275,
    is_available=True,
    exists=True,
)
UNAVAILABLE = replace(LATTE, is_available=False)
ARCHIVED = replace(LATTE, archived=True)
MISSING = MenuItem(menu_item_id="m404")


def line(line_id: str, item: MenuItem, quantity: int, notes: str = "") -> OrderLine:
    return OrderLine(
        line_id=line_id,
        menu_item_id=item.menu_item_id,
        name=item.name,
        unit_price_cents=item.price_cents,
        quantity=quantity,
        notes=notes,
    )


L1 = line("l1", LATTE, 2)
L2 = line("l2", MUFFIN, 1)
PLACED = OrderPlaced(
    order_id="o1",
    table_id="t1",
    customer_name="Ann",
    notes="",
    lines=(L1, L2),
    placed_at=EARLIER,
)
TOTAL = 2 * 350 + 275
STARTED = OrderPreparationStarted(at=EARLIER)
READY = OrderReady(at=EARLIER)
SERVED = OrderServed(at=EARLIER)
PAID = OrderPaid(method="cash", amount_cents=TOTAL, tip_cents=0, at=EARLIER)
CANCELLED = OrderCancelled(reason="changed mind", at=EARLIER)

HISTORY: dict[Status, tuple[DomainEvent, ...]] = {
    Status.NONE: (),
    Status.PENDING: (PLACED,),
    Status.PREPARING: (PLACED, STARTED),
    Status.READY: (PLACED, STARTED, READY),
    Status.SERVED: (PLACED, STARTED, READY, SERVED),
    Status.PAID: (PLACED, STARTED, READY, SERVED, PAID),
    Status.CANCELLED: (PLACED, CANCELLED),
}
OPEN = [Status.PENDING, Status.PREPARING, Status.READY, Status.SERVED]
CLOSED = [Status.PAID, Status.CANCELLED]


def given(*events: DomainEvent) -> Order:
    return reduce(evolve, events, Order())


def at(status: Status) -> Order:
    state = given(*HISTORY[status])
    assert state.status is status
    return state


def when(command: OrderCommand, state: Order, now: datetime = NOW) -> list[DomainEvent]:
    return decide(command, state, now)


def raises(error: type[DomainError], command: OrderCommand, state: Order) -> None:
    with pytest.raises(error):
        decide(command, state, NOW)


def place(*lines: LineRequest, order_id: str = "o1") -> PlaceOrder:
    return PlaceOrder(order_id, lines, table_id="t1", customer_name="Ann", notes="window")


# -- place -------------------------------------------------------------------------------------


def test_place_an_order_captures_name_and_unit_price_from_the_menu_item():
    command = place(LineRequest("l1", LATTE, 2, "oat milk"), LineRequest("l2", MUFFIN, 1))
    assert when(command, given()) == [
        OrderPlaced(
            order_id="o1",
            table_id="t1",
            customer_name="Ann",
            notes="window",
            lines=(line("l1", LATTE, 2, "oat milk"), L2),
            placed_at=NOW,
        )
    ]


def test_a_placed_order_is_pending_with_its_lines_and_total():
    state = given(PLACED)
    assert state == Order(order_id="o1", status=Status.PENDING, lines=(L1, L2))
    assert state.total_cents == TOTAL


def test_place_without_table_or_customer():
    [event] = when(PlaceOrder("o2", (LineRequest("l1", LATTE, 1),)), given())
    assert isinstance(event, OrderPlaced)
    assert (event.table_id, event.customer_name, event.notes) == (None, None, "")


def test_placing_without_lines_is_a_rule_violation():
    raises(RuleViolation, place(), given())


def test_placing_an_existing_order_again_is_invalid():
    raises(InvalidState, place(LineRequest("l9", LATTE, 1)), at(Status.PENDING))


@pytest.mark.parametrize(
    ("item", "error"),
    [
        (UNAVAILABLE, InvalidState),
        (ARCHIVED, InvalidState),
        (MISSING, NotFound),
        (replace(UNAVAILABLE, archived=True), InvalidState),
    ],
    ids=["unavailable", "archived", "nonexistent", "archived-and-unavailable"],
)
def test_placing_with_a_menu_item_that_cannot_be_ordered(item: MenuItem, error: type[DomainError]):
    raises(error, place(LineRequest("l1", item, 1)), given())


def test_one_bad_line_refuses_the_whole_order():
    command = place(LineRequest("l1", LATTE, 1), LineRequest("l2", ARCHIVED, 1))
    raises(InvalidState, command, given())


@pytest.mark.parametrize("quantity", [0, 100, -1, 1000])
def test_placing_with_a_quantity_out_of_range_is_a_rule_violation(quantity: int):
    raises(RuleViolation, place(LineRequest("l1", LATTE, quantity)), given())


@pytest.mark.parametrize("quantity", [1, 99])
def test_placing_with_a_quantity_at_the_bounds(quantity: int):
    [event] = when(place(LineRequest("l1", LATTE, quantity)), given())
    assert isinstance(event, OrderPlaced)
    assert event.lines == (line("l1", LATTE, quantity),)


def test_a_price_change_after_ordering_does_not_change_the_line():
    repriced = replace(LATTE, name="Big Latte", price_cents=500)
    state = given(PLACED)
    events = when(AddItem(LineRequest("l3", repriced, 1)), state)
    assert events == [OrderItemAdded(line=line("l3", repriced, 1))]
    state = reduce(evolve, events, state)
    assert [(li.name, li.unit_price_cents) for li in state.lines] == [
        ("Latte", 350),
        ("Muffin", 275),
        ("Big Latte", 500),
    ]
    assert state.total_cents == TOTAL + 500


# -- unknown order -------------------------------------------------------------------------------

ON_EXISTING: list[OrderCommand] = [
    AddItem(LineRequest("l3", LATTE, 1)),
    RemoveItem("l1"),
    StartPreparation(),
    MarkReady(),
    Serve(),
    Pay("card", TOTAL),
    Cancel("no"),
]


@pytest.mark.parametrize("command", ON_EXISTING, ids=lambda c: type(c).__name__)
def test_every_command_on_an_unknown_order_is_not_found(command: OrderCommand):
    raises(NotFound, command, given())


# -- status machine ------------------------------------------------------------------------------

VALID: dict[tuple[type, Status], DomainEvent] = {
    (StartPreparation, Status.PENDING): OrderPreparationStarted(at=NOW),
    (MarkReady, Status.PREPARING): OrderReady(at=NOW),
    (Serve, Status.READY): OrderServed(at=NOW),
    (Pay, Status.SERVED): OrderPaid(method="card", amount_cents=TOTAL, tip_cents=0, at=NOW),
    **{(Cancel, s): OrderCancelled(reason="no", at=NOW) for s in OPEN},
}
TRANSITIONS: list[OrderCommand] = [
    StartPreparation(),
    MarkReady(),
    Serve(),
    Pay("card", TOTAL),
    Cancel("no"),
]
NEXT = {
    OrderPreparationStarted: Status.PREPARING,
    OrderReady: Status.READY,
    OrderServed: Status.SERVED,
    OrderPaid: Status.PAID,
    OrderCancelled: Status.CANCELLED,
}


@pytest.mark.parametrize("status", [*OPEN, *CLOSED])
@pytest.mark.parametrize("command", TRANSITIONS, ids=lambda c: type(c).__name__)
def test_status_machine(command: OrderCommand, status: Status):
    expected = VALID.get((type(command), status))
    state = at(status)
    if expected is None:
        raises(InvalidState, command, state)
        return
    assert when(command, state) == [expected]
    after = evolve(state, expected)
    assert after.status is NEXT[type(expected)]
    assert after.lines == state.lines


def test_the_whole_happy_path():
    state = given()
    steps: list[tuple[OrderCommand, Status]] = [
        (place(LineRequest("l1", LATTE, 2)), Status.PENDING),
        (StartPreparation(), Status.PREPARING),
        (MarkReady(), Status.READY),
        (Serve(), Status.SERVED),
        (Pay("other", 700, 50), Status.PAID),
    ]
    for command, status in steps:
        [event] = when(command, state)
        state = evolve(state, event)
        assert state.status is status
    assert (state.paid_cents, state.tip_cents) == (700, 50)


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (MarkReady(), Status.PENDING),
        (Serve(), Status.PENDING),
        (Serve(), Status.PREPARING),
        (Pay("cash", TOTAL), Status.READY),
        (Pay("cash", TOTAL), Status.PENDING),
        (StartPreparation(), Status.PREPARING),
        (StartPreparation(), Status.SERVED),
        (MarkReady(), Status.SERVED),
    ],
    ids=lambda v: v.value if isinstance(v, Status) else type(v).__name__,
)
def test_skipping_or_repeating_a_step_is_invalid(command: OrderCommand, status: Status):
    raises(InvalidState, command, at(status))


# -- lines ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.PENDING, Status.PREPARING])
def test_add_an_item_while_editable(status: Status):
    events = when(AddItem(LineRequest("l3", MUFFIN, 3, "warm")), at(status))
    assert events == [OrderItemAdded(line=line("l3", MUFFIN, 3, "warm"))]
    state = reduce(evolve, events, at(status))
    assert state.lines == (L1, L2, line("l3", MUFFIN, 3, "warm"))
    assert state.status is status
    assert state.total_cents == TOTAL + 3 * 275


@pytest.mark.parametrize("status", [Status.READY, Status.SERVED, *CLOSED])
def test_adding_an_item_after_preparation_is_invalid(status: Status):
    raises(InvalidState, AddItem(LineRequest("l3", MUFFIN, 1)), at(status))


@pytest.mark.parametrize(
    ("item", "error"),
    [(UNAVAILABLE, InvalidState), (ARCHIVED, InvalidState), (MISSING, NotFound)],
    ids=["unavailable", "archived", "nonexistent"],
)
def test_adding_a_menu_item_that_cannot_be_ordered(item: MenuItem, error: type[DomainError]):
    raises(error, AddItem(LineRequest("l3", item, 1)), at(Status.PENDING))


@pytest.mark.parametrize("quantity", [0, 100, -5])
def test_adding_a_quantity_out_of_range_is_a_rule_violation(quantity: int):
    raises(RuleViolation, AddItem(LineRequest("l3", LATTE, quantity)), at(Status.PREPARING))


@pytest.mark.parametrize("status", [Status.PENDING, Status.PREPARING])
def test_remove_a_line_while_editable(status: Status):
    events = when(RemoveItem("l1"), at(status))
    assert events == [OrderItemRemoved(line_id="l1")]
    state = reduce(evolve, events, at(status))
    assert state.lines == (L2,)
    assert state.total_cents == 275


def test_removing_a_line_keeps_every_other_line_untouched():
    big = line("l3", MUFFIN, 99, "for the office")
    state = given(PLACED, OrderItemAdded(line=big), OrderItemAdded(line=line("l4", LATTE, 1)))
    state = reduce(evolve, when(RemoveItem("l4"), state), state)
    assert state.lines == (L1, L2, big)
    assert state.total_cents == TOTAL + 99 * 275


def test_a_free_item_is_captured_at_zero():
    free = replace(MUFFIN, menu_item_id="m0", name="Water", price_cents=0)
    [event] = when(AddItem(LineRequest("l3", free, 2)), at(Status.PENDING))
    assert event == OrderItemAdded(line=line("l3", free, 2))
    assert evolve(at(Status.PENDING), event).total_cents == TOTAL


@pytest.mark.parametrize("status", [Status.READY, Status.SERVED, *CLOSED])
def test_removing_a_line_after_preparation_is_invalid(status: Status):
    raises(InvalidState, RemoveItem("l1"), at(status))


def test_removing_an_unknown_line_is_not_found():
    raises(NotFound, RemoveItem("l404"), at(Status.PENDING))


def test_removing_a_line_twice_is_not_found():
    raises(NotFound, RemoveItem("l1"), given(PLACED, OrderItemRemoved(line_id="l1")))


def test_removing_the_last_line_is_invalid():
    state = given(PLACED, OrderItemRemoved(line_id="l1"))
    raises(InvalidState, RemoveItem("l2"), state)


def test_removing_the_last_line_after_adding_and_removing():
    state = given(
        PLACED,
        OrderItemAdded(line=line("l3", LATTE, 1)),
        OrderItemRemoved(line_id="l1"),
        OrderItemRemoved(line_id="l3"),
    )
    assert state.lines == (L2,)
    raises(InvalidState, RemoveItem("l2"), state)


def test_placing_with_duplicate_line_ids_is_a_rule_violation():
    lines = (LineRequest("l1", LATTE, 1), LineRequest("l1", MUFFIN, 1))
    raises(RuleViolation, place(*lines), given())


@pytest.mark.parametrize("status", [Status.PENDING, Status.PREPARING])
def test_adding_a_line_with_an_id_the_order_already_has_is_invalid(status: Status):
    raises(InvalidState, AddItem(LineRequest("l1", MUFFIN, 1)), at(status))


def test_a_removed_line_id_can_be_used_again():
    state = given(PLACED, OrderItemRemoved(line_id="l1"))
    assert when(AddItem(LineRequest("l1", MUFFIN, 1)), state) == [
        OrderItemAdded(line=line("l1", MUFFIN, 1))
    ]


def test_an_order_never_loses_its_last_line_through_a_reused_line_id():
    """A duplicated id would let one removal take every line carrying it."""
    state = given(PLACED, OrderItemRemoved(line_id="l2"))
    with pytest.raises(DomainError):
        decide(AddItem(LineRequest("l1", MUFFIN, 1)), state, NOW)
    raises(InvalidState, RemoveItem("l1"), state)
    assert len(state.lines) == 1


# -- pay -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [TOTAL - 1, TOTAL + 1, 0, TOTAL + 100])
def test_paying_an_amount_other_than_the_total_is_a_rule_violation(amount: int):
    raises(RuleViolation, Pay("card", amount, 100), at(Status.SERVED))


def test_a_negative_tip_is_a_rule_violation():
    raises(RuleViolation, Pay("card", TOTAL, -1), at(Status.SERVED))


def test_pay_the_total_with_a_tip():
    events = when(Pay("card", TOTAL, 150), at(Status.SERVED))
    assert events == [OrderPaid(method="card", amount_cents=TOTAL, tip_cents=150, at=NOW)]
    state = reduce(evolve, events, at(Status.SERVED))
    assert state.status is Status.PAID
    assert (state.paid_cents, state.tip_cents) == (TOTAL, 150)
    assert state.lines == (L1, L2)


def test_the_total_follows_line_changes():
    state = given(PLACED, OrderItemRemoved(line_id="l1"), STARTED, READY, SERVED)
    raises(RuleViolation, Pay("cash", TOTAL), state)
    assert when(Pay("cash", 275), state) == [
        OrderPaid(method="cash", amount_cents=275, tip_cents=0, at=NOW)
    ]


# -- cancel --------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", OPEN)
def test_cancel_from_every_state_before_paid(status: Status):
    events = when(Cancel("customer left"), at(status))
    assert events == [OrderCancelled(reason="customer left", at=NOW)]
    state = reduce(evolve, events, at(status))
    assert state.status is Status.CANCELLED
    assert state.lines == (L1, L2)


def test_cancelling_a_paid_order_is_invalid():
    raises(InvalidState, Cancel("too late"), at(Status.PAID))


def test_cancelling_twice_is_invalid():
    raises(InvalidState, Cancel("again"), at(Status.CANCELLED))


@pytest.mark.parametrize("status", OPEN)
def test_cancelled_from_any_state_is_final(status: Status):
    state = given(*HISTORY[status], CANCELLED)
    for command in [*ON_EXISTING, place(LineRequest("l9", LATTE, 1))]:
        raises(InvalidState, command, state)


# -- closed orders -------------------------------------------------------------------------------

ON_CLOSED: list[OrderCommand] = [
    *ON_EXISTING,
    Pay("card", TOTAL, 0),
    RemoveItem("l404"),
    AddItem(LineRequest("l3", ARCHIVED, 0)),
    place(LineRequest("l9", LATTE, 1)),
]


@pytest.mark.parametrize("status", CLOSED)
@pytest.mark.parametrize("command", ON_CLOSED, ids=lambda c: type(c).__name__)
def test_every_command_on_a_closed_order_is_invalid(command: OrderCommand, status: Status):
    raises(InvalidState, command, at(status))


# -- time ----------------------------------------------------------------------------------------


def test_now_flows_into_every_timestamp():
    moments = [NOW + timedelta(minutes=minutes) for minutes in range(5)]
    state = given()
    commands: list[OrderCommand] = [
        place(LineRequest("l1", LATTE, 1)),
        StartPreparation(),
        MarkReady(),
        Serve(),
        Pay("card", 350),
    ]
    stamps = []
    for command, moment in zip(commands, moments, strict=True):
        [event] = when(command, state, moment)
        stamps.append(event.placed_at if isinstance(event, OrderPlaced) else event.at)
        state = evolve(state, event)
    assert stamps == moments


def test_now_flows_into_the_cancellation():
    later = NOW + timedelta(hours=2)
    assert when(Cancel("x"), at(Status.READY), later) == [OrderCancelled(reason="x", at=later)]
