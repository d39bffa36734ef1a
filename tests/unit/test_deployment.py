"""The deployment files, checked without Docker (no engine runs on these machines):
compose.yaml's topology and health gates, the Dockerfile's rules, and that every metric the
Grafana dashboard charts exists on /metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

import coffeeshop.api.scheduler  # noqa: F401 (its counters: what the scheduler serves)
from coffeeshop.api.app import create_app
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = {"api", "relay", "projector", "worker", "scheduler"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_has_the_whole_topology_and_no_version_key(compose: dict[str, Any]) -> None:
    assert "version" not in compose
    services = compose["services"]
    assert set(services) == {*APP_SERVICES, "mysql", "redis", "migrate", "prometheus", "grafana"}
    assert services["mysql"]["image"] == "mysql:8.0"
    assert services["redis"]["image"] == "redis:7-alpine"
    assert "--appendonly" in services["redis"]["command"]
    assert (
        services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1]
        == "yes"
    )
    assert set(compose["volumes"]) >= {"mysql-data", "redis-data"}
    assert services["migrate"]["command"] == ["coffeeshop", "migrate"]
    assert services["migrate"]["restart"] == "no"
    for name, command in (
        ("relay", "relay"),
        ("projector", "projector"),
        ("worker", "worker"),
        ("scheduler", "scheduler"),
    ):
        assert services[name]["command"] == ["coffeeshop", command]
    assert services["prometheus"]["profiles"] == ["observability"]
    assert services["grafana"]["profiles"] == ["observability"]


def test_every_service_has_a_healthcheck_and_waits_for_what_it_needs(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("mysql", "redis", *APP_SERVICES):
        assert services[name]["healthcheck"]["test"], name
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["mysql"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert services[name]["env_file"] == ".env", name
        assert "REDIS_URL" in services[name]["environment"], name
    assert services["migrate"]["depends_on"]["mysql"]["condition"] == "service_healthy"
    for name in (*APP_SERVICES, "migrate"):
        check = services[name].get("healthcheck", {}).get("test", [])
        assert "requests" not in json.dumps(check), name
        if check[:3] == ["CMD", "python", "-c"]:
            compile(check[3], f"{name} healthcheck", "exec")


def test_the_dockerfile_is_multi_stage_non_root_and_checks_health_with_the_stdlib() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert stages == ["python:3.11-slim", "python:3.11-slim"]
    assert "uv sync --frozen --no-dev" in text
    final = text.split("AS runtime", 1)[1]
    assert "uv" not in final.replace("/opt/venv", "")  # no uv, no compiler in the final image
    assert re.search(r"^USER coffeeshop$", final, re.MULTILINE)
    health = re.search(r"^HEALTHCHECK[^\n]*\\\n\s*CMD (\[.*\])$", final, re.MULTILINE)
    assert health is not None
    assert "urllib.request" in health.group(1)
    assert "requests" not in health.group(1).replace("urllib.request", "")
    command = json.loads(health.group(1))  # exec form: a JSON array
    assert command[:2] == ["python", "-c"]
    compile(command[2], "HEALTHCHECK", "exec")  # the probe is valid Python
    assert "coffeeshop serve" in final.splitlines()[-1]


def test_every_metric_on_the_dashboard_exists_on_metrics(embedded_url: str) -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/coffeeshop.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    charted = {name for expr in exprs for name in re.findall(r"\b((?:coffeeshop|http)_\w+)", expr)}
    assert len(charted) >= 12
    with TestClient(create_app(make_settings(database_url=embedded_url, redis_url=None))) as client:
        client.get("/health")
        page = client.get("/metrics").text
    exposed = set(re.findall(r"^(?:# TYPE )?((?:coffeeshop|http)_\w+)", page, re.MULTILINE))
    exposed |= {f"{name}_bucket" for name in exposed} | {f"{name}_total" for name in exposed}
    assert charted <= exposed, sorted(charted - exposed)


def test_prometheus_scrapes_the_api_and_every_process() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["api"]["static_configs"][0]["targets"] == ["api:8000"]
    names = jobs["processes"]["dns_sd_configs"][0]["names"]
    assert set(names) == APP_SERVICES - {"api"}


def test_the_docs_name_tests_that_exist() -> None:
    """docs/architecture.md proves each failure mode with a test: the tests it names exist."""
    text = (ROOT / "docs/architecture.md").read_text()
    named = re.findall(r"`(tests/[\w/]+(?:\.py)?)(?:::(\w+))?`", text)
    assert len(named) >= 12
    for path, function in named:
        target = ROOT / path
        assert target.exists(), path
        if function:
            assert f"def {function}(" in target.read_text(), f"{path}::{function}"
    for doc in ("scaling.md", "runbook.md"):
        assert (ROOT / "docs" / doc).stat().st_size > 2000
