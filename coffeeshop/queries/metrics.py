"""Prometheus counters of the query side's cache."""

from __future__ import annotations

from prometheus_client import Counter

CACHE_LOOKUPS = Counter(
    "coffeeshop_cache_lookups", "Cache lookups by cache and result (hit, miss)", ["cache", "result"]
)
