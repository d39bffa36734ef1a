"""Every projection of the application, by name."""

from __future__ import annotations

from collections.abc import Callable

from coffeeshop.projections import daily_sales, menu, order_history, orders
from coffeeshop.projections.base import Projection

TimezoneOf = Callable[[str], str]
"""restaurant_id -> IANA time zone name (for projections that bucket by local date)."""


def build_projections(timezone_of: TimezoneOf) -> dict[str, Projection]:
    projections: list[Projection] = [
        orders.build(),
        order_history.build(),
        menu.build(),
        daily_sales.build(timezone_of),
    ]
    return {projection.name: projection for projection in projections}
