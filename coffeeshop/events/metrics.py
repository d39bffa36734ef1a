"""Prometheus counters of the write side's store (multiprocess-safe through prometheus_client)."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_APPENDED = Counter(
    "coffeeshop_events_appended", "Events committed to the event store, by event type", ["type"]
)
CONCURRENCY_CONFLICTS = Counter(
    "coffeeshop_concurrency_conflicts",
    "Appends refused because a stream moved since it was loaded (retried or answered 409/412)",
)
