"""The full daily report a worker builds: the daily figures, every order placed that local
day with its lines, payments by method, the hourly breakdown, and a CSV of the lines.

Read from the projections only. "That day" is the restaurant's local date, as in the daily
figures: orders by when they were placed, payments by when they were made.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import Engine, func, select

from coffeeshop.projections.orders import orders
from coffeeshop.queries.reports import DailyReport, daily_report

CSV_COLUMNS = (
    "order_id",
    "placed_at",
    "status",
    "line_id",
    "item",
    "quantity",
    "unit_price_cents",
    "line_total_cents",
    "payment_method",
    "paid_at",
)


class ReportLine(BaseModel):
    line_id: str
    menu_item_id: str
    name: str
    quantity: int
    unit_price_cents: int
    line_total_cents: int


class ReportOrder(BaseModel):
    order_id: str
    placed_at: datetime
    status: str
    total_cents: int
    tip_cents: int
    paid_cents: int
    payment_method: str | None
    paid_at: datetime | None
    lines: list[ReportLine]


class MethodFigures(BaseModel):
    method: str
    payments: int
    amount_cents: int
    tips_cents: int


class FullDailyReport(BaseModel):
    summary: DailyReport
    timezone: str
    orders: list[ReportOrder]
    payments_by_method: list[MethodFigures]


def local_day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """The UTC instants (naive, as stored) where the local day starts and the next begins;
    23 or 25 hours apart on the days clocks change."""
    tz = ZoneInfo(zone)
    start = datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz).astimezone(UTC)
    return start.replace(tzinfo=None), end.replace(tzinfo=None)


def full_daily_report(engine: Engine, restaurant_id: str, day: date, zone: str) -> FullDailyReport:
    start, end = local_day_bounds(day, zone)
    placed = (
        select(orders)
        .where(
            orders.c.restaurant_id == restaurant_id,
            orders.c.created_at >= start,
            orders.c.created_at < end,
        )
        .order_by(orders.c.created_at, orders.c.order_id)
    )
    paid = (
        select(
            orders.c.payment_method,
            func.count().label("payments"),
            func.coalesce(func.sum(orders.c.paid_cents), 0).label("amount"),
            func.coalesce(func.sum(orders.c.tip_cents), 0).label("tips"),
        )
        .where(
            orders.c.restaurant_id == restaurant_id,
            orders.c.paid_at >= start,
            orders.c.paid_at < end,
        )
        .group_by(orders.c.payment_method)
        .order_by(orders.c.payment_method)
    )
    with engine.connect() as conn:
        rows = conn.execute(placed).mappings().all()
        methods = conn.execute(paid).all()
    return FullDailyReport(
        summary=daily_report(engine, restaurant_id, day),
        timezone=zone,
        orders=[_order(row, ZoneInfo(zone)) for row in rows],
        payments_by_method=[
            MethodFigures(
                method=row.payment_method or "unknown",
                payments=int(row.payments),
                amount_cents=int(row.amount),
                tips_cents=int(row.tips),
            )
            for row in methods
        ],
    )


def report_csv(report: FullDailyReport) -> str:
    """One row per order line; local times with their UTC offset."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for order in report.orders:
        for line in order.lines:
            writer.writerow(
                [
                    order.order_id,
                    order.placed_at.isoformat(),
                    order.status,
                    line.line_id,
                    line.name,
                    line.quantity,
                    line.unit_price_cents,
                    line.line_total_cents,
                    order.payment_method or "",
                    order.paid_at.isoformat() if order.paid_at else "",
                ]
            )
    return out.getvalue()


def _order(row: Any, zone: ZoneInfo) -> ReportOrder:
    return ReportOrder(
        order_id=row["order_id"],
        placed_at=_local(row["created_at"], zone),
        status=row["status"],
        total_cents=int(row["total_cents"]),
        tip_cents=int(row["tip_cents"]),
        paid_cents=int(row["paid_cents"]),
        payment_method=row["payment_method"],
        paid_at=_local(row["paid_at"], zone) if row["paid_at"] else None,
        lines=[
            ReportLine(
                line_id=line["line_id"],
                menu_item_id=line["menu_item_id"],
                name=line["name"],
                quantity=int(line["quantity"]),
                unit_price_cents=int(line["unit_price_cents"]),
                line_total_cents=int(line["line_total_cents"]),
            )
            for line in row["lines"]
        ],
    )


def _local(moment: datetime, zone: ZoneInfo) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(zone)
