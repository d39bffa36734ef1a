"""Reports (read side): the daily sales report. Managers and owners only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response

from coffeeshop.api.deps import ContainerDep, ManagerPrincipal
from coffeeshop.api.errors import Unprocessable
from coffeeshop.api.reads import MinPosition, await_position
from coffeeshop.queries.reports import DailyReport, daily_report

router = APIRouter(prefix="/api/v1")
PROJECTION = "daily_sales"

LocalDate = Annotated[
    str,
    Query(
        alias="date",
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        description="The restaurant's local date, YYYY-MM-DD",
        examples=["2026-03-14"],
    ),
]


@router.get("/reports/daily", tags=["reports"])
def read_daily_report(
    caller: ManagerPrincipal,
    container: ContainerDep,
    response: Response,
    day: LocalDate,
    min_position: MinPosition = None,
) -> DailyReport:
    """One local day's sales in the restaurant's time zone: orders placed that day
    (cancelled ones included), payments, revenue without tips, tips, the average ticket,
    the ten best-selling items and all 24 hours. A day without orders is all zeros."""
    local_day = _calendar_date(day)
    await_position(container, caller, PROJECTION, min_position, response)
    return daily_report(container.reads, caller.restaurant_id, local_day)


def _calendar_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:  # well formed but not a day, e.g. 2026-02-30
        raise Unprocessable(
            "date must be a calendar date, YYYY-MM-DD",
            errors=[{"loc": ["query", "date"], "msg": "not a calendar date"}],
        ) from exc
