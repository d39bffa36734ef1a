"""Reports (read side): the daily sales report. Managers and owners only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from coffeeshop.api.container import Container
from coffeeshop.api.deps import ContainerDep, ManagerPrincipal
from coffeeshop.api.errors import ResourceNotFound, Unprocessable
from coffeeshop.api.reads import fresh_to
from coffeeshop.api.report_tasks import ReportTask
from coffeeshop.queries.reports import DailyReport, daily_report

router = APIRouter(prefix="/api/v1")
PROJECTION = "daily_sales"
Fresh = Annotated[None, Depends(fresh_to(PROJECTION))]

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
    _fresh: Fresh,
) -> DailyReport:
    """One local day's sales in the restaurant's time zone: orders placed that day
    (cancelled ones included), payments, revenue without tips, tips, the average ticket,
    the ten best-selling items and all 24 hours. A day without orders is all zeros."""
    local_day = _calendar_date(day)
    return daily_report(container.reads, caller.restaurant_id, local_day)


def _calendar_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:  # well formed but not a day, e.g. 2026-02-30
        raise Unprocessable(
            "date must be a calendar date, YYYY-MM-DD",
            errors=[{"loc": ["query", "date"], "msg": "not a calendar date"}],
        ) from exc


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: dt.date = Field(description="The restaurant's local date", examples=["2026-03-14"])


class ReportTaskView(BaseModel):
    task_id: str
    status: Literal["processing", "done", "failed"]
    date: dt.date
    attempts: int = 0
    result: dict[str, Any] | None = None
    csv_url: str | None = None
    error: str | None = None


@router.post("/reports/daily", status_code=202, tags=["reports"], response_model=ReportTaskView)
def request_daily_report(
    body: ReportRequest, caller: ManagerPrincipal, container: ContainerDep
) -> ReportTaskView:
    """Build the full report of a local day off the request path: the daily figures, every
    order with its lines, payments by method, the hours, and a CSV. Answers at once with the
    task; asking again while it runs returns the same task."""
    task, created = container.report_tasks.request(caller.restaurant_id, body.date)
    if created:
        container.report_bell(task.task_id)
    return _view(task)


@router.get("/reports/tasks/{task_id}", tags=["reports"], response_model=ReportTaskView)
def read_report_task(
    task_id: UUID, caller: ManagerPrincipal, container: ContainerDep
) -> ReportTaskView:
    """``processing``, ``done`` (with the report and its CSV's address) or ``failed``
    (with the reason)."""
    return _view(_task(container, caller.restaurant_id, task_id))


@router.get(
    "/reports/tasks/{task_id}/csv",
    tags=["reports"],
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per order line"}},
)
def read_report_csv(task_id: UUID, caller: ManagerPrincipal, container: ContainerDep) -> Response:
    """The finished report's order lines as CSV (404 until the task is done)."""
    task = _task(container, caller.restaurant_id, task_id)
    if task.status != "done" or task.csv is None:
        raise ResourceNotFound("The report is not ready; its task is " + task.status)
    filename = f"daily-report-{task.day.isoformat()}.csv"
    return Response(
        task.csv,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _task(container: Container, restaurant_id: str, task_id: UUID) -> ReportTask:
    task = container.report_tasks.get(restaurant_id, str(task_id))
    if task is None:
        raise ResourceNotFound("No such report task")
    return task


def _view(task: ReportTask) -> ReportTaskView:
    done = task.status == "done"
    return ReportTaskView(
        task_id=task.task_id,
        status=task.status,
        date=task.day,
        attempts=task.attempts,
        result=task.result if done else None,
        csv_url=f"/api/v1/reports/tasks/{task.task_id}/csv" if done else None,
        error=task.error,
    )
