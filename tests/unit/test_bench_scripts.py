"""The bench scripts are not run by the suite (each takes minutes and needs wrk), but they
must keep importing and parsing their options, and the table and wrk parsing they share
must keep working."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
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


def test_numbers_ratios_and_verdicts_read_the_same_in_every_script() -> None:
    stats = _bench_module("stats")
    assert [stats.number(v) for v in (1234.5, 12.345, 1.234, float("nan"))] == [
        "1,234",
        "12.3",
        "1.23",
        "n/a",
    ]
    assert stats.ratio(50.0, 200.0, "commit/s") == "0.25x commit/s"
    assert stats.ratio(50.0, 0.0, "floor") == "n/a vs floor"
    assert stats.ratio(float("nan"), 2.0, "floor") == "n/a vs floor"
    assert stats.ratio(1.0, float("nan"), "floor") == "n/a vs floor"
    assert stats.verdict(40.0, 60.0) == "met"
    assert stats.verdict(40.0, 60.0, below=False) == "MISSED"
    assert stats.verdict(float("nan"), 60.0) == "n/a"
    assert stats.megabytes(3 * 2**20) == "3 MB"


def test_percentile_is_nearest_rank() -> None:
    stats = _bench_module("stats")
    values = [float(v) for v in range(100, 0, -1)]
    assert stats.percentile(values, 50) == 50.0
    assert stats.percentile(values, 99) == 99.0
    assert stats.percentile(values, 100) == 100.0
    assert stats.percentile([7.0], 0) == 7.0
    assert stats.percentile([], 50) != stats.percentile([], 50)  # NaN


def test_progress_and_process_helpers_read_this_process() -> None:
    procs = _bench_module("procs")
    assert procs.peak_rss_mb(os.getpid()) > 0
    assert procs.process_cpu_seconds() > 0
    assert procs.cpu_seconds([os.getpid(), 2**22 + 1]) > 0  # a pid that is gone counts nothing
    assert math.isnan(procs.process_cpu_seconds(2**22 + 1))
    total, largest = procs.tree_rss_mb(os.getpid())
    assert total > 0
    assert largest > 0
    assert 1024 <= procs.free_port() <= 65535
    assert procs.api_workers(os.getpid()) == [os.getpid()]


def test_a_child_is_started_logged_and_stopped(tmp_path: Path) -> None:
    procs = _bench_module("procs")
    argv = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    child = procs.start_child("sleeper", argv, dict(os.environ), tmp_path)
    try:
        deadline = time.monotonic() + 30
        while not procs.tail(child.log_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.process.pid in procs.children_of(os.getpid())
        assert child.process.pid in procs.descendants(os.getpid())
    finally:
        procs.stop_children([child], timeout_s=5)
    assert child.process.returncode is not None
    assert procs.tail(child.log_path) == "up"
    assert procs.tail(tmp_path / "missing.log") == ""
