"""The daily sales report of one restaurant and local date (see projections.daily_sales)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel
from sqlalchemy import Engine, select

from coffeeshop.projections.daily_sales import daily_sales, daily_sales_hours, daily_sales_items

TOP_ITEMS = 10
HOURS = range(24)


class TopItem(BaseModel):
    menu_item_id: str
    name: str
    quantity: int
    revenue_cents: int


class HourFigures(BaseModel):
    hour: int
    orders: int
    revenue_cents: int


class DailyReport(BaseModel):
    date: date
    orders: int
    paid_orders: int
    cancelled_orders: int
    revenue_cents: int
    tips_cents: int
    average_ticket_cents: int
    top_items: list[TopItem]
    by_hour: list[HourFigures]


def daily_report(engine: Engine, restaurant_id: str, day: date) -> DailyReport:
    """The day's figures; a day without any activity is all zeros (and 24 empty hours)."""
    totals_query = select(daily_sales).where(
        daily_sales.c.restaurant_id == restaurant_id, daily_sales.c.day == day
    )
    items = daily_sales_items.c
    top_query = (
        select(daily_sales_items)
        .where(items.restaurant_id == restaurant_id, items.day == day)
        .order_by(items.quantity.desc(), items.revenue_cents.desc(), items.menu_item_id)
        .limit(TOP_ITEMS)
    )
    hours_query = select(daily_sales_hours).where(
        daily_sales_hours.c.restaurant_id == restaurant_id, daily_sales_hours.c.day == day
    )
    with engine.connect() as conn:
        if conn.dialect.name in {"mysql", "mariadb"}:
            # One snapshot for the three reads (the engine default is READ COMMITTED), so the
            # totals, the items and the hours agree even while the projector commits.
            conn.execution_options(isolation_level="REPEATABLE READ")
        totals = conn.execute(totals_query).first()
        top = conn.execute(top_query).all()
        hours = {row.hour: row for row in conn.execute(hours_query)}
    orders = paid = cancelled = revenue = tips = 0
    if totals is not None:
        orders, paid, cancelled = totals.orders, totals.paid_orders, totals.cancelled_orders
        revenue, tips = int(totals.revenue_cents), int(totals.tips_cents)
    return DailyReport(
        date=day,
        orders=orders,
        paid_orders=paid,
        cancelled_orders=cancelled,
        revenue_cents=revenue,
        tips_cents=tips,
        average_ticket_cents=revenue // paid if paid else 0,
        top_items=[
            TopItem(
                menu_item_id=row.menu_item_id,
                name=row.name,
                quantity=row.quantity,
                revenue_cents=int(row.revenue_cents),
            )
            for row in top
        ],
        by_hour=[
            HourFigures(
                hour=hour,
                orders=hours[hour].orders if hour in hours else 0,
                revenue_cents=int(hours[hour].revenue_cents) if hour in hours else 0,
            )
            for hour in HOURS
        ],
    )
