"""Prometheus counters of command handling."""

from __future__ import annotations

from prometheus_client import Counter

COMMANDS = Counter(
    "coffeeshop_commands",
    "Commands handled, by command and outcome (ok, replayed, unchanged, rejected, conflict, error)",
    ["command", "outcome"],
)
