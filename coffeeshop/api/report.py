"""The `coffeeshop projections` table: where each read model stands, at a glance."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from coffeeshop.api.runtime import ProjectionStatus
from coffeeshop.events.clock import as_utc

HEADERS = ("projection", "state", "checkpoint", "head", "lag", "lag (s)", "last verify")


def render_report(rows: Sequence[ProjectionStatus], now: datetime) -> str:
    """A plain-text table, then one line per failure or rebuild with its details."""
    table = [HEADERS, *(_cells(row, now) for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]
    numeric = {2, 3, 4, 5}
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in table
    ]
    for row in rows:
        if row.state == "failed":
            lines.append(f"\n{row.name} failed: {row.error or 'no error recorded'}")
            lines.append(
                "  the projection is stopped at the event above; fix the cause and restart "
                "`coffeeshop projector` (nothing after it was skipped)"
            )
        if row.rebuild is not None:
            done, total = row.rebuild.applied, max(row.rebuild.total, 1)
            lines.append(
                f"\n{row.name} rebuild: {done:,}/{row.rebuild.total:,} events "
                f"({done / total:.0%}), started {_ago(row.rebuild.started_at, now)}, "
                f"last batch {_ago(row.rebuild.updated_at, now)}"
            )
    return "\n".join(lines)


def _cells(row: ProjectionStatus, now: datetime) -> tuple[str, ...]:
    state = row.state
    if row.rebuild is not None and row.state == "rebuilding":
        state = f"rebuilding {row.rebuild.applied / max(row.rebuild.total, 1):.0%}"
    return (
        row.name,
        state,
        f"{row.applied:,}",
        f"{row.head:,}",
        f"{row.lag_events:,}",
        f"{row.lag_seconds:,.1f}",
        _verification(row, now),
    )


def _verification(row: ProjectionStatus, now: datetime) -> str:
    found = row.verification
    if found is None:
        return "never"
    outcome = "clean" if found.drift_rows == 0 else f"DRIFT {found.drift_rows:,} rows"
    return f"{outcome}, {_ago(found.verified_at, now)}"


def _ago(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((now - as_utc(moment)).total_seconds()))
    if seconds < 90:
        return f"{seconds}s ago"
    if seconds < 90 * 60:
        return f"{seconds // 60}m ago"
    if seconds < 36 * 3600:
        return f"{seconds // 3600}h ago"
    return f"{seconds // 86400}d ago"
