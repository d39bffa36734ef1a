"""Prometheus figures about the read side, read from the database at scrape time.

Projection state, lag, rebuild progress and the last ``verify`` result live in tables that
every process writes (projectors, replay and verify CLI runs, the scheduler); reading them
when Prometheus scrapes gives the same answer from any API instance or worker, with nothing
to aggregate across processes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from coffeeshop.api.container import Container
from coffeeshop.api.runtime import projection_report
from coffeeshop.events.clock import as_utc

log = logging.getLogger("coffeeshop.metrics")
STATES = ("live", "rebuilding", "failed", "idle")


class ProjectionCollector(Collector):
    def __init__(self, container: Container) -> None:
        self._container = container

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            report = projection_report(self._container)
        except Exception:  # a scrape must not fail because the database is away
            log.warning("could not read projection state for metrics", exc_info=True)
            return
        state = GaugeMetricFamily(
            "coffeeshop_projection_state",
            "1 for the projection's current state (live, rebuilding, failed, idle)",
            labels=["projection", "state"],
        )
        lag_events = GaugeMetricFamily(
            "coffeeshop_projection_lag_events",
            "Events in the store not yet applied by the projection",
            labels=["projection"],
        )
        lag_seconds = GaugeMetricFamily(
            "coffeeshop_projection_lag_seconds",
            "Age of the oldest event not yet applied by the projection",
            labels=["projection"],
        )
        rebuild = GaugeMetricFamily(
            "coffeeshop_projection_rebuild_progress_ratio",
            "Share of the store a running replay has read (absent when none runs)",
            labels=["projection"],
        )
        drift = GaugeMetricFamily(
            "coffeeshop_projection_verify_drift_rows",
            "Rows that differed between live and a fresh rebuild at the last verify",
            labels=["projection"],
        )
        verified = GaugeMetricFamily(
            "coffeeshop_projection_verify_timestamp_seconds",
            "When the projection was last verified (Unix time)",
            labels=["projection"],
        )
        for row in report:
            for name in STATES:
                state.add_metric([row.name, name], 1.0 if row.state == name else 0.0)
            lag_events.add_metric([row.name], float(row.lag_events))
            lag_seconds.add_metric([row.name], row.lag_seconds)
            if row.rebuild is not None:
                share = row.rebuild.applied / max(row.rebuild.total, 1)
                rebuild.add_metric([row.name], min(share, 1.0))
            if row.verification is not None:
                drift.add_metric([row.name], float(row.verification.drift_rows))
                verified.add_metric([row.name], as_utc(row.verification.verified_at).timestamp())
        yield from (state, lag_events, lag_seconds, rebuild, drift, verified)
