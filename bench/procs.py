"""The processes a bench script starts, watches and stops: children, ports, CPU and memory.

Everything here reads /proc of processes the script started itself; nothing is matched by name.
"""

from __future__ import annotations

import collections
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

BIN = Path(sys.executable).parent  # the venv's scripts: coffeeshop, py-spy


class Progress:
    """``[  12.3s] message`` on stderr, timed from when the script made it (after its imports)."""

    def __init__(self, width: int = 6) -> None:
        self.start = time.perf_counter()
        self.width = width

    def __call__(self, message: str) -> None:
        elapsed = time.perf_counter() - self.start
        print(f"[{elapsed:{self.width}.1f}s] {message}", file=sys.stderr, flush=True)


# -- children ----------------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


def start_child(name: str, argv: list[str], env: dict[str, str], workdir: Path) -> Child:
    """``argv`` in ``workdir``, its output in ``<workdir>/<name>.log``."""
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as sink:
        process = subprocess.Popen(  # own children, stopped by handle in stop_children
            argv, env=env, cwd=workdir, stdout=sink, stderr=subprocess.STDOUT
        )
    return Child(name, process, log_path)


def stop_children(children: Sequence[Child], timeout_s: float = 10.0) -> None:
    """SIGTERM each, then wait; a child still running after ``timeout_s`` is killed."""
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait(5)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_healthy(
    base: str,
    children: Sequence[Child],
    timeout_s: float = 30.0,
    *,
    ready: Callable[[], bool] = lambda: True,
    request_timeout_s: float = 1.0,
    poll_s: float = 0.1,
    log_lines: int = 15,
) -> None:
    """Until ``base``/health answers 200 and ``ready()`` holds; raises with the log of a child
    that exited meanwhile, or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        broken = [c for c in children if c.process.poll() is not None]
        if broken:
            raise RuntimeError(f"{broken[0].name} exited:\n{tail(broken[0].log_path, log_lines)}")
        try:
            healthy = httpx.get(f"{base}/health", timeout=request_timeout_s).status_code == 200
        except httpx.HTTPError:
            healthy = False
        if healthy and ready():
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the API did not answer /health within {timeout_s:.0f} s")
        time.sleep(poll_s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def flush_redis(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


# -- process trees -----------------------------------------------------------------------------


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for child in children_of(pid):
        found += [child, *descendants(child)]
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def api_workers(serve_pid: int) -> list[int]:
    """Uvicorn's worker processes (with one worker, the serve process itself)."""
    workers = [pid for pid in descendants(serve_pid) if "multiprocessing" in cmdline(pid)]
    workers = [pid for pid in workers if "resource_tracker" not in cmdline(pid)]
    return workers or [serve_pid]


# -- CPU and memory ----------------------------------------------------------------------------


def process_cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds (user + system) of this process, or of a child by pid (NaN once it is gone)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: Sequence[int]) -> float:
    """The CPU seconds of these processes together; those already gone count nothing."""
    used = (process_cpu_seconds(pid) for pid in pids)
    return sum((seconds for seconds in used if not math.isnan(seconds)), 0.0)


def peak_rss_mb(pid: int) -> float:
    """VmHWM of a live process, in MB (NaN once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return math.nan


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory of a process and all its descendants now, and the largest high-water
    mark (VmHWM) among them, in MB."""
    total_kb, largest_kb, pending = 0, 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    largest_kb = max(largest_kb, int(line.split()[1]))
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text()
                pending += [int(child) for child in children.split()]
        except (OSError, ValueError):
            continue  # it exited meanwhile
    return total_kb / 1024, largest_kb / 1024


class RssSampler:
    """VmHWM of the api workers, relay and projector, sampled every 0.5 s (a process's
    high-water mark is lost when it exits)."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = collections.defaultdict(float)
        self._roles: dict[str, Callable[[], list[int]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def watch(self, children: Sequence[Child]) -> None:
        for child in children:
            if child.name == "serve":
                pid = child.process.pid
                self._roles["api worker"] = lambda pid=pid: api_workers(pid)  # type: ignore[misc]
            else:
                self._roles[child.name] = lambda pid=child.process.pid: [pid]  # type: ignore[misc]

    def sample(self) -> None:
        for role, pids in list(self._roles.items()):
            for pid in pids():
                self.peaks[role] = max(self.peaks[role], peak_rss_mb(pid))

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.sample()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
