"""Repeated measurements as ``median (min-max)``, and the table the bench scripts print.

from stats import Measured, Table, repeat
rate = repeat(lambda: measure_once(), runs=3)      # Measured
table = Table()
table.add("POST /orders", rate, "req/s", limit=ceiling, target=">= 1000")
table.print()
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Measured:
    """The values one figure took over the runs."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Iterable[float]) -> Measured:
        kept = tuple(v for v in values if not math.isnan(v))
        return cls(kept)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else math.nan

    def __str__(self) -> str:
        if not self.values:
            return "n/a"
        if len(self.values) == 1:
            return number(self.values[0])
        low, high = min(self.values), max(self.values)
        return f"{number(self.median)} ({number(low)}-{number(high)})"


def repeat(measure: Callable[[], float], runs: int = 3) -> Measured:
    return Measured.of(measure() for _ in range(runs))


def number(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(value: float, limit: float, name: str) -> str:
    """``0.42x name``: a figure beside the limit it is compared with."""
    if not limit or math.isnan(value) or math.isnan(limit):
        return f"n/a vs {name}"
    return f"{value / limit:.2f}x {name}"


def verdict(value: float, limit: float, below: bool = True) -> str:
    """Whether ``value`` is below (or at least) ``limit``; n/a when either is unknown."""
    if math.isnan(value) or math.isnan(limit):
        return "n/a"
    return "met" if (value < limit if below else value >= limit) else "MISSED"


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def megabytes(size: int) -> str:
    return f"{size / 2**20:,.0f} MB"


def print_report(header: Sequence[str], table: Sequence[str], notes: Sequence[str]) -> None:
    """The setup lines, the table, then the notes when there are any; a blank line before each."""
    print()
    for line in header:
        print(line)
    print()
    for line in table:
        print(line)
    if notes:
        print()
        for note in notes:
            print(f"* {note}")


# A target: (">=" or "<=", the number). None: no target, only the figure.
Target = tuple[str, float]


@dataclass
class Row:
    figure: str
    value: Measured | str
    unit: str
    limit: Measured | str = ""
    target: Target | None = None
    target_is_ratio: bool = False  # the target applies to value / limit

    @property
    def met(self) -> str:
        if self.target is None or not isinstance(self.value, Measured) or not self.value.values:
            return ""
        sign, bound = self.target
        value = self.ratio_value if self.target_is_ratio else self.value.median
        ok = value >= bound if sign == ">=" else value <= bound
        return "yes" if ok else "NO"

    @property
    def ratio(self) -> str:
        value = self.ratio_value
        return "" if math.isnan(value) else f"{value:.2f}x"

    @property
    def ratio_value(self) -> float:
        if not isinstance(self.value, Measured) or not isinstance(self.limit, Measured):
            return math.nan
        return self.value.median / self.limit.median if self.limit.median else math.nan


@dataclass
class Table:
    rows: list[Row | str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def section(self, title: str) -> None:
        self.rows.append(title)

    def add(
        self,
        figure: str,
        value: Measured | str,
        unit: str,
        *,
        limit: Measured | str = "",
        target: Target | None = None,
        target_is_ratio: bool = False,
    ) -> Row:
        """``target_is_ratio``: the target applies to value / limit (e.g. >= 0.70 of /health)."""
        row = Row(figure, value, unit, limit, target, target_is_ratio)
        self.rows.append(row)
        return row

    def lines(self) -> list[str]:
        header = ("figure", "value: median (min-max)", "unit", "limit (same run)", "ratio")
        cells = [
            (r.figure, str(r.value), r.unit, str(r.limit), r.ratio)
            for r in self.rows
            if isinstance(r, Row)
        ]
        widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
        titles = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
        out = [titles + "  target  met?"]
        out.append("-" * len(out[0]))
        for row in self.rows:
            if isinstance(row, str):
                out.append(f"-- {row}")
                continue
            target = f"{row.target[0]} {number(row.target[1])}" if row.target else ""
            if row.target and row.target_is_ratio:
                target += "x"
            cell = (row.figure, str(row.value), row.unit, str(row.limit), row.ratio)
            text = "  ".join(c.ljust(w) for c, w in zip(cell, widths, strict=True))
            out.append(f"{text}  {target:<7} {row.met}".rstrip())
        out.extend(f"* {note}" for note in self.notes)
        return out

    def print(self) -> None:
        print("\n".join(self.lines()), flush=True)
