"""Input rules of the command bodies (API.md "Input rules"), checked through pydantic."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from coffeeshop.commands.models import (
    AvailabilityUpdate,
    CancellationCreate,
    CategoryCreate,
    CategoryUpdate,
    MenuItemCreate,
    MenuItemUpdate,
    OrderCreate,
    OrderItemCreate,
    PaymentCreate,
)

ITEM_ID = "6f1c2a4e-8d7b-4c3a-9e5f-0a1b2c3d4e5f"
CATEGORY_ID = "0b9e8d7c-6a5b-4c3d-8e2f-1a0b9c8d7e6f"
LINE = {"menu_item_id": ITEM_ID, "quantity": 1}


def refused(model: type[BaseModel], data: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The locations pydantic blames; fails the test when the body is accepted."""
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [tuple(error["loc"]) for error in info.value.errors()]


def order(**fields: Any) -> dict[str, Any]:
    return {"items": [LINE], **fields}


# -- customer_name -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "José",
        "Zoë",
        "王小明",
        "O'Brien-Smith",
        "J. R. R. Tolkien",
        "Анна",
        "محمد",
        "Łukasz",
        "Ἀλέξανδρος",
        "김민준",
        "Nguyễn",
        "A" * 100,
    ],
)
def test_person_names_of_any_language_are_valid(name: str):
    assert OrderCreate.model_validate(order(customer_name=name)).customer_name == name


def test_a_person_name_is_trimmed_and_normalised():
    decomposed = "Jose\u0301"
    body = OrderCreate.model_validate(order(customer_name=f"  {decomposed} "))
    assert body.customer_name == "José"
    assert len(body.customer_name) == 4


@pytest.mark.parametrize(
    "name",
    [
        "Ann2",
        "R2D2",
        "007",
        "Ann\x00",
        "An\x07n",
        "Ann\nLee",
        "Ann\u200bLee",
        "Ann_Lee",
        "Ann@Lee",
        "<script>",
        "-Ann",
        "",
        "   ",
        "A" * 101,
        "Ann\u0663",  # Arabic-Indic digit three
    ],
    ids=repr,
)
def test_invalid_person_names(name: str):
    assert refused(OrderCreate, order(customer_name=name)) == [("customer_name",)]


def test_customer_name_is_optional():
    assert OrderCreate.model_validate(order()).customer_name is None


@pytest.mark.parametrize("name", ["प्रिया", "สมศักดิ์", "مُحَمَّد", "கார்த்திக்"])
def test_names_written_with_combining_marks_are_valid(name: str):
    assert OrderCreate.model_validate(order(customer_name=name)).customer_name == name


@pytest.mark.parametrize("name", ["Ann²", "Louis Ⅻ", "½", "\u0301Ann", "'Ann", ".Ann"], ids=repr)
def test_numerals_and_a_leading_non_letter_are_invalid(name: str):
    assert refused(OrderCreate, order(customer_name=name)) == [("customer_name",)]


# -- names (category, menu item) ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["Café au lait", "Tea & Cake", "No. 5", "X" * 100])
def test_names_may_hold_any_printable_text(name: str):
    assert CategoryCreate(name=name).name == name


def test_a_name_is_trimmed():
    assert CategoryCreate(name="  Coffee ").name == "Coffee"


@pytest.mark.parametrize(
    "name", ["", "   ", "X" * 101, "Cof\x00fee", "Cof\tfee", "a\u200bb"], ids=repr
)
def test_invalid_names(name: str):
    assert refused(CategoryCreate, {"name": name}) == [("name",)]
    assert refused(
        MenuItemCreate, {"name": name, "category_id": CATEGORY_ID, "price_cents": 1}
    ) == [("name",)]
    assert refused(CategoryUpdate, {"name": name}) == [("name",)]


# -- notes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<b>extra hot</b>", "bextra hot/b"),
        ("  oat milk  ", "oat milk"),
        ("no\x00 sugar\x07", "no sugar"),
        ("line\nbreak\ttab\r", "linebreaktab"),
        ("\x1b[31mred\x1b[0m", "[31mred[0m"),
        ("<<>>", ""),
        ("  < >  ", ""),
        ("½ shot, café", "½ shot, café"),
    ],
    ids=repr,
)
def test_notes_lose_control_characters_and_angle_brackets_and_are_trimmed(raw: str, clean: str):
    assert OrderCreate.model_validate(order(notes=raw)).notes == clean
    assert OrderItemCreate.model_validate({**LINE, "notes": raw}).notes == clean
    body = MenuItemCreate.model_validate(
        {"name": "Latte", "category_id": CATEGORY_ID, "price_cents": 1, "description": raw}
    )
    assert body.description == clean


def test_notes_default_to_empty():
    assert OrderCreate.model_validate(order()).notes == ""
    assert OrderItemCreate.model_validate(LINE).notes == ""


def test_notes_up_to_500_characters_after_cleaning_are_valid():
    assert len(OrderCreate.model_validate(order(notes="x" * 500)).notes) == 500
    assert OrderCreate.model_validate(order(notes="<" + "x" * 500 + ">  ")).notes == "x" * 500


@pytest.mark.parametrize("notes", ["x" * 501, "x " * 251, 42], ids=["501", "502-spaced", "int"])
def test_invalid_notes(notes: Any):
    assert refused(OrderCreate, order(notes=notes)) == [("notes",)]
    assert refused(OrderItemCreate, {**LINE, "notes": notes}) == [("notes",)]


# -- quantity, prices, money ---------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [1, 2, 98, 99])
def test_quantities_within_1_to_99_are_valid(quantity: int):
    assert OrderItemCreate.model_validate({**LINE, "quantity": quantity}).quantity == quantity


@pytest.mark.parametrize("quantity", [0, -1, 100, 1000, 1.5, "many", None])
def test_quantities_outside_1_to_99_are_invalid(quantity: Any):
    assert refused(OrderItemCreate, {**LINE, "quantity": quantity}) == [("quantity",)]
    assert refused(OrderCreate, {"items": [{**LINE, "quantity": quantity}]}) == [
        ("items", 0, "quantity")
    ]


@pytest.mark.parametrize("price", [0, 1, 10_000_000])
def test_prices_within_0_to_10_million_are_valid(price: int):
    body = {"name": "Latte", "category_id": CATEGORY_ID, "price_cents": price}
    assert MenuItemCreate.model_validate(body).price_cents == price
    assert MenuItemUpdate.model_validate({"price_cents": price}).price_cents == price


@pytest.mark.parametrize("price", [-1, 10_000_001, 2**63])
def test_prices_outside_0_to_10_million_are_invalid(price: int):
    body = {"name": "Latte", "category_id": CATEGORY_ID, "price_cents": price}
    assert refused(MenuItemCreate, body) == [("price_cents",)]
    assert refused(MenuItemUpdate, {"price_cents": price}) == [("price_cents",)]


@pytest.mark.parametrize(
    "body",
    [
        {"method": "bitcoin", "amount_cents": 100},
        {"method": "card", "amount_cents": -1},
        {"method": "card", "amount_cents": 100, "tip_cents": -1},
        {"amount_cents": 100},
        {"method": "card"},
    ],
    ids=repr,
)
def test_invalid_payments(body: dict[str, Any]):
    assert refused(PaymentCreate, body)


def test_a_valid_payment():
    body = PaymentCreate.model_validate({"method": "other", "amount_cents": 975})
    assert (body.method, body.amount_cents, body.tip_cents) == ("other", 975, 0)


@pytest.mark.parametrize("category_id", ["not-a-uuid", "", 5])
def test_referenced_ids_must_be_uuids(category_id: Any):
    body = {"name": "Latte", "category_id": category_id, "price_cents": 1}
    assert refused(MenuItemCreate, body) == [("category_id",)]


# -- shape: unknown fields, items ---------------------------------------------------------------

VALID_BODIES: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (CategoryCreate, {"name": "Coffee"}),
    (CategoryUpdate, {}),
    (MenuItemCreate, {"name": "Latte", "category_id": CATEGORY_ID, "price_cents": 350}),
    (MenuItemUpdate, {}),
    (AvailabilityUpdate, {"is_available": False}),
    (OrderItemCreate, LINE),
    (OrderCreate, order()),
    (PaymentCreate, {"method": "cash", "amount_cents": 0}),
    (CancellationCreate, {"reason": "customer left"}),
]


@pytest.mark.parametrize(("model", "body"), VALID_BODIES, ids=lambda v: getattr(v, "__name__", ""))
def test_unknown_fields_are_rejected(model: type[BaseModel], body: dict[str, Any]):
    model.model_validate(body)
    with pytest.raises(ValidationError) as info:
        model.model_validate({**body, "total_cents": 1})
    assert [(e["type"], e["loc"]) for e in info.value.errors()] == [
        ("extra_forbidden", ("total_cents",))
    ]


def test_unknown_fields_in_an_order_line_are_rejected():
    body = {"items": [{**LINE, "unit_price_cents": 1}]}
    assert refused(OrderCreate, body) == [("items", 0, "unit_price_cents")]


@pytest.mark.parametrize("model", [m for m, _ in VALID_BODIES], ids=lambda m: m.__name__)
def test_command_bodies_are_frozen(model: type[BaseModel]):
    body = model.model_validate(dict(VALID_BODIES)[model])
    field = next(iter(model.model_fields))
    with pytest.raises(ValidationError):
        setattr(body, field, None)


@pytest.mark.parametrize("items", [[], None, "x"], ids=repr)
def test_an_order_needs_a_list_of_at_least_one_item(items: Any):
    assert refused(OrderCreate, {"items": items}) == [("items",)]


def test_an_order_without_items_is_rejected():
    assert refused(OrderCreate, {"customer_name": "Ann"}) == [("items",)]


def test_an_order_with_up_to_100_items_is_valid():
    assert len(OrderCreate.model_validate({"items": [LINE] * 100}).items) == 100
    assert refused(OrderCreate, {"items": [LINE] * 101}) == [("items",)]


# -- cancellation reason -----------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["", "   ", "<>", "\x00\x07", " < \n > "], ids=repr)
def test_a_blank_cancellation_reason_is_rejected(reason: str):
    assert refused(CancellationCreate, {"reason": reason}) == [("reason",)]


def test_a_cancellation_reason_is_cleaned_like_notes():
    assert CancellationCreate(reason="  <i>customer\n left</i> ").reason == "icustomer left/i"


def test_a_cancellation_reason_is_required_and_at_most_500_characters():
    assert refused(CancellationCreate, {}) == [("reason",)]
    assert refused(CancellationCreate, {"reason": "x" * 501}) == [("reason",)]
    assert CancellationCreate(reason="x" * 500).reason == "x" * 500
