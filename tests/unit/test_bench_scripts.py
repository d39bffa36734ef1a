"""The bench scripts are not run by the suite (each takes minutes and needs wrk), but they
must keep importing and parsing their options, and the table and wrk parsing they share
must keep working."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
SCRIPTS = [
    "raw_limits.py",
    "http_api.py",
    "orders_dataset.py",
    "pipeline.py",
    "read_side.py",
    "replay.py",
]


@pytest.mark.parametrize("script", SCRIPTS)
def test_bench_script_imports_and_explains_its_options(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout


def _bench_module(name: str):  # the scripts import each other as top-level modules
    sys.path.insert(0, str(BENCH))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(BENCH))


def test_measured_prints_median_and_spread_and_the_table_judges_targets() -> None:
    stats = _bench_module("stats")
    measured = stats.Measured.of([1200.0, 900.0, 1500.0])
    assert str(measured) == "1,200 (900-1,500)"
    table = stats.Table()
    table.add("post", measured, "req/s", target=(">=", 1000))
    table.add("p99", stats.Measured.of([60.0]), "ms", target=("<=", 50))
    menu = stats.Measured.of([700.0])
    ceiling = stats.Measured.of([1000.0])
    table.add("menu", menu, "req/s", limit=ceiling, target=(">=", 0.8), target_is_ratio=True)
    lines = table.lines()
    assert lines[2].endswith("yes")
    assert lines[3].endswith("NO")
    assert "0.70x" in lines[4]
    assert lines[4].endswith("NO")


def test_wrk_summary_line_is_parsed() -> None:
    raw_limits = _bench_module("raw_limits")
    output = (
        "Running 10s test\n"
        "BENCH rps=1234.50 p50_ms=3.100 p99_ms=45.000 requests=12345 non2xx=2 socket_errors=1\n"
    )
    result = raw_limits.parse_wrk(output)
    assert (result.requests_per_s, result.p99_ms, result.non_2xx) == (1234.5, 45.0, 2)
    assert result.socket_errors == 1
    with pytest.raises(RuntimeError):
        raw_limits.parse_wrk("no summary")
