"""Random command sequences against the Order decider: its invariants hold after every step.

Line ids are random: a new line mostly gets a fresh id (the handlers use uuid4) but sometimes
reuses one issued before (current, removed or refused); RemoveItem picks a current line, any id
ever issued, or one that was never issued.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import reduce

from hypothesis import event, given, settings
from hypothesis import strategies as st

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
from coffeeshop.events.orders import OrderLine, OrderPlaced
from coffeeshop.events.registry import DomainEvent

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
EDITABLE = {Status.PENDING, Status.PREPARING}
CLOSED = {Status.PAID, Status.CANCELLED}
OPEN = {Status.PENDING, Status.PREPARING, Status.READY, Status.SERVED}
EDGES = {
    (Status.NONE, Status.PENDING),
    (Status.PENDING, Status.PREPARING),
    (Status.PREPARING, Status.READY),
    (Status.READY, Status.SERVED),
    (Status.SERVED, Status.PAID),
    *((status, Status.CANCELLED) for status in OPEN),
}
STEP_TO = {
    StartPreparation: (Status.PENDING, Status.PREPARING),
    MarkReady: (Status.PREPARING, Status.READY),
    Serve: (Status.READY, Status.SERVED),
}


# -- strategies ----------------------------------------------------------------------------------


def _mostly(probability_in_ten: int) -> st.SearchStrategy[bool]:
    return st.integers(0, 9).map(lambda n: n < probability_in_ten)


def _items(exists: bool, available: bool, archived: bool) -> st.SearchStrategy[MenuItem]:
    return st.builds(
        MenuItem,
        menu_item_id=st.sampled_from(["m1", "m2", "m3", "m4"]),
        category_id=st.just("c1"),
        name=st.sampled_from(["Latte", "Muffin", "Tea", "Bagel"]),
        description=st.just(""),
        price_cents=st.integers(0, 5_000),
        is_available=st.just(available),
        exists=st.just(exists),
        archived=st.just(archived),
    )


orderable = _items(exists=True, available=True, archived=False)
unorderable = st.one_of(
    _items(exists=False, available=False, archived=False),
    _items(exists=True, available=False, archived=False),
    _items(exists=True, available=True, archived=True),
    _items(exists=True, available=False, archived=True),
)
menu_items = st.one_of(orderable, orderable, orderable, orderable, unorderable)
valid_quantities = st.one_of(st.integers(1, 3), st.integers(1, 99), st.sampled_from([1, 99]))
quantities = st.one_of(
    valid_quantities, valid_quantities, valid_quantities, st.sampled_from([0, -1, 100, 101, -99])
)


@dataclass(frozen=True)
class NewLine:
    item: MenuItem
    quantity: int
    notes: str
    reuse: int | None = None  # index into the ids issued so far, instead of a fresh id


@dataclass(frozen=True)
class RemoveAny:
    """A current line (``current``) or any id ever issued; out of range means never issued."""

    current: bool
    pick: int


@dataclass(frozen=True)
class PayAttempt:
    """Pays the total plus ``offset`` (0: exactly the total)."""

    method: str
    offset: int
    tip: int


@dataclass(frozen=True)
class Advance:
    """The next step on the happy path for whatever the status is then; pays total + offset."""

    offset: int
    tip: int


Step = (
    tuple[NewLine, ...]
    | NewLine
    | RemoveAny
    | StartPreparation
    | MarkReady
    | Serve
    | PayAttempt
    | Cancel
    | Advance
)

new_lines = st.builds(
    NewLine,
    menu_items,
    quantities,
    st.sampled_from(["", "no sugar"]),
    st.sampled_from([None] * 6 + [0, 1, 2, 5]),
)
transitions = st.sampled_from([StartPreparation(), MarkReady(), Serve()])
payments = st.builds(
    PayAttempt,
    st.sampled_from(["cash", "card", "other"]),
    st.one_of(
        st.just(0), st.just(0), st.sampled_from([-1, 1, -350, 350]), st.integers(-20_000, 20_000)
    ),
    st.one_of(st.just(0), st.integers(0, 500), st.integers(-50, -1)),
)
advances = st.builds(
    Advance,
    st.sampled_from([0, 0, 0, 0, 0, 1, -1, 500]),
    st.one_of(st.integers(0, 300), st.integers(0, 300), st.just(-1)),
)


def weighted(*choices: tuple[int, st.SearchStrategy[Step]]) -> st.SearchStrategy[Step]:
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


steps = weighted(
    (1, st.lists(new_lines, max_size=3).map(tuple)),
    (4, new_lines),
    (3, st.builds(RemoveAny, _mostly(6), st.integers(0, 12))),
    (2, transitions),
    (3, payments),
    (3, advances),
    (1, st.builds(Cancel, st.sampled_from(["", "customer left"]))),
)
valid_first = st.lists(
    st.builds(NewLine, orderable, valid_quantities, st.just("")), min_size=1, max_size=3
).map(tuple)
any_first = st.lists(new_lines, max_size=3).map(tuple)
first_steps = st.sampled_from([valid_first, valid_first, valid_first, any_first]).flatmap(
    lambda strategy: strategy
)


class Issuer:
    """Fresh line ids, like the handlers' uuid4, and a record of every id ever issued."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    def fresh(self) -> str:
        self.issued.append(f"l{len(self.issued)}")
        return self.issued[-1]

    def line_id(self, new: NewLine) -> str:
        if new.reuse is None or not self.issued:
            return self.fresh()
        return self.issued[new.reuse % len(self.issued)]


def to_command(step: Step, state: Order, ids: Issuer) -> OrderCommand:
    match step:
        case tuple():
            requests = tuple(
                LineRequest(ids.line_id(new), new.item, new.quantity, new.notes) for new in step
            )
            return PlaceOrder("o1", requests, table_id=None, customer_name="Ann")
        case NewLine(item=item, quantity=quantity, notes=notes):
            return AddItem(LineRequest(ids.line_id(step), item, quantity, notes))
        case RemoveAny(current=True, pick=pick) if state.lines:
            return RemoveItem(state.lines[pick % len(state.lines)].line_id)
        case RemoveAny(pick=pick):
            return RemoveItem(ids.issued[pick] if pick < len(ids.issued) else "never-issued")
        case Advance(offset=offset, tip=tip):
            nexts = {Status.PENDING: StartPreparation(), Status.PREPARING: MarkReady()}
            nexts[Status.READY] = Serve()
            return nexts.get(state.status, Pay("cash", state.total_cents + offset, tip))
        case PayAttempt(method=method, offset=offset, tip=tip):
            return Pay(method, state.total_cents + offset, tip)  # type: ignore[arg-type]
    return step


# -- the model: which outcomes the API allows --------------------------------------------------


def _line_errors(request: LineRequest) -> set[type[DomainError]]:
    item = request.menu_item
    errors: set[type[DomainError]] = set()
    if not item.exists:
        errors.add(NotFound)
    if item.exists and (item.archived or not item.is_available):
        errors.add(InvalidState)
    if not 1 <= request.quantity <= 99:
        errors.add(RuleViolation)
    return errors


def allowed_errors(command: OrderCommand, state: Order) -> set[type[DomainError]]:
    """The errors the command may raise; an empty set means it must succeed."""
    if isinstance(command, PlaceOrder):
        if state.status is not Status.NONE:
            return {InvalidState}
        errors = set().union(*(_line_errors(request) for request in command.lines))
        if len({request.line_id for request in command.lines}) != len(command.lines):
            errors.add(RuleViolation)  # line ids are unique within an order
        return errors if command.lines else {RuleViolation}
    if state.status is Status.NONE:
        return {NotFound}
    if state.status in CLOSED:
        return {InvalidState}
    errors: set[type[DomainError]] = set()
    match command:
        case AddItem(line=request):
            errors = _line_errors(request)
            if state.status not in EDITABLE:
                errors.add(InvalidState)
            if request.line_id in {line.line_id for line in state.lines}:
                errors.add(InvalidState)
        case RemoveItem(line_id=line_id):
            if state.status not in EDITABLE:
                errors.add(InvalidState)
            if line_id not in {line.line_id for line in state.lines}:
                errors.add(NotFound)
            elif len(state.lines) == 1:
                errors.add(InvalidState)
        case StartPreparation() | MarkReady() | Serve():
            if state.status is not STEP_TO[type(command)][0]:
                errors.add(InvalidState)
        case Pay(amount_cents=amount, tip_cents=tip):
            if state.status is not Status.SERVED:
                errors.add(InvalidState)
            if amount != state.total_cents or tip < 0:
                errors.add(RuleViolation)
    return errors


def timestamps(event: DomainEvent) -> list[datetime]:
    if isinstance(event, OrderPlaced):
        return [event.placed_at]
    stamp = getattr(event, "at", None)
    return [] if stamp is None else [stamp]


def assert_invariants(before: Order, after: Order) -> None:
    assert after.total_cents == sum(li.unit_price_cents * li.quantity for li in after.lines)
    assert all(1 <= li.quantity <= 99 for li in after.lines)
    assert after.status == before.status or (before.status, after.status) in EDGES
    if after.status is not Status.NONE:
        assert len(after.lines) >= 1
    if before.status is not Status.NONE and before.status not in EDITABLE:
        assert after.lines == before.lines
    if after.status is Status.PAID:
        assert after.paid_cents == after.total_cents
        assert after.tip_cents >= 0
    line_ids = [li.line_id for li in after.lines]
    assert len(line_ids) == len(set(line_ids))


def captured(request: LineRequest) -> OrderLine:
    item = request.menu_item
    return OrderLine(
        line_id=request.line_id,
        menu_item_id=item.menu_item_id,
        name=item.name,
        unit_price_cents=item.price_cents,
        quantity=request.quantity,
        notes=request.notes,
    )


def expected_lines(command: OrderCommand, before: Order) -> tuple[OrderLine, ...]:
    """The lines after an accepted command: exactly what it asked for, nothing else."""
    match command:
        case PlaceOrder(lines=requests):
            return tuple(captured(request) for request in requests)
        case AddItem(line=request):
            return (*before.lines, captured(request))
        case RemoveItem(line_id=line_id):
            return tuple(line for line in before.lines if line.line_id != line_id)
    return before.lines


def run(first: tuple[NewLine, ...], rest: list[Step]) -> tuple[Order, list[DomainEvent]]:
    ids = Issuer()
    state, produced = Order(), []
    for minute, step in enumerate([first, *rest]):
        now = T0 + timedelta(minutes=minute)
        command = to_command(step, state, ids)
        before, snapshot = state, copy.deepcopy(state)
        allowed = allowed_errors(command, before)
        try:
            events, refused = decide(command, before, now), None
        except DomainError as error:
            events, refused = [], error
        if refused is not None:
            assert type(refused) in allowed, f"{command!r} on {before!r} raised {refused!r}"
            assert before == snapshot
            event(f"refused {type(command).__name__}: {type(refused).__name__}")
            continue
        event(f"accepted: {type(command).__name__}")
        assert not allowed, f"{command!r} on {before!r} should have raised one of {allowed}"
        assert before.status not in CLOSED
        assert len(events) == 1
        assert all(stamp == now for e in events for stamp in timestamps(e))
        state = reduce(evolve, events, before)
        produced.extend(events)
        assert state.lines == expected_lines(command, before)
        assert_invariants(before, state)
    return state, produced


@settings(max_examples=500, deadline=None)
@given(first_steps, st.lists(steps, min_size=8, max_size=40))
def test_every_step_keeps_the_order_invariants_and_replay_reproduces_the_state(first, rest):
    state, produced = run(first, rest)
    event(f"final status: {state.status}")
    assert reduce(evolve, produced, Order()) == state


@settings(max_examples=200, deadline=None)
@given(
    st.lists(new_lines, min_size=1, max_size=3).map(tuple),
    st.lists(steps, max_size=25),
    st.lists(steps, min_size=1, max_size=15),
)
def test_a_closed_order_refuses_every_further_command(first, rest, after_close):
    state, produced = run(first, rest)
    if state.status is Status.NONE:
        return
    if state.status not in CLOSED:
        [cancelled] = decide(Cancel("closing"), state, T0)
        state = evolve(state, cancelled)
        produced.append(cancelled)
    ids = Issuer()
    ids.issued.extend(line.line_id for line in state.lines)
    for step in after_close:
        command = to_command(step, state, ids)
        snapshot = copy.deepcopy(state)
        try:
            decide(command, state, T0)
        except InvalidState:
            assert state == snapshot
        else:
            raise AssertionError(f"{command!r} was accepted by a {state.status} order")
    assert reduce(evolve, produced, Order()) == state


@settings(max_examples=200, deadline=None)
@given(st.lists(new_lines, min_size=1, max_size=3).map(tuple), st.lists(steps, max_size=25))
def test_an_open_order_can_always_be_driven_to_paid_for_its_exact_total(first, rest):
    state, _ = run(first, rest)
    if state.status not in OPEN:
        return
    lines = state.lines
    for command in (StartPreparation(), MarkReady(), Serve()):
        if state.status is STEP_TO[type(command)][0]:
            [event] = decide(command, state, T0)
            state = evolve(state, event)
    assert state.status is Status.SERVED
    [paid] = decide(Pay("card", state.total_cents, 10), state, T0)
    after = evolve(state, paid)
    assert (after.status, after.paid_cents, after.tip_cents) == (
        Status.PAID,
        state.total_cents,
        10,
    )
    assert after.lines == lines
