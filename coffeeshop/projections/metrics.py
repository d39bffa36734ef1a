"""Prometheus counters of the projectors (their lag is read from the database at scrape)."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_PROJECTED = Counter(
    "coffeeshop_projector_events",
    "Events applied by a projector process, by projection",
    ["projection"],
)
