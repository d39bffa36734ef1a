"""Fault-test plumbing: a scratch database, a private Redis server, and `coffeeshop` processes
that can be killed with SIGKILL, restarted, and are always stopped at teardown.

Nothing here touches the shared `test` database or the machine's Redis: the database is
``<TEST_DATABASE_URL's database>_faults`` (created, emptied, migrated, dropped at the end) and
Redis is a `redis-server` of our own on a free port, without persistence.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

import coffeeshop
from coffeeshop.api.db import make_engine
from coffeeshop.migrations.runner import upgrade
from tests.conftest import MYSQL_URL, make_settings

COFFEESHOP = Path(sys.executable).with_name("coffeeshop")
# The processes run the very code this test imports (whatever an installed copy holds).
CODE_ROOT = Path(coffeeshop.__file__).resolve().parent.parent
SECRET_KEY = "fault-test-secret-key-0123456789-abcdefghijklmnop"
SCRATCH_SUFFIX = "_faults"
STOP_TIMEOUT_S = 15.0
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_PASSED_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1
) -> float:
    """Poll ``condition`` until it holds; returns the seconds it took, raises on timeout."""
    began = time.monotonic()
    while True:
        try:
            if condition():
                return time.monotonic() - began
        except (OSError, redis.RedisError, httpx.HTTPError):
            pass  # not up yet
        if time.monotonic() - began > timeout_s:
            raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(interval_s)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="module", autouse=True)
def sigterm_tears_down() -> Iterator[None]:
    """A CI time limit (or `timeout`) sends SIGTERM, which would end pytest without any
    teardown and leave our processes running: make it an interrupt, which pytest tears down."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- the scratch database ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch_database_url() -> Iterator[str]:
    """A database of our own next to the shared one: created, emptied, migrated, dropped."""
    shared = make_url(MYSQL_URL)
    name = f"{shared.database or 'coffeeshop'}{SCRATCH_SUFFIX}"
    assert _SAFE_NAME.fullmatch(name), f"unexpected database name {name!r}"
    url = shared.set(database=name).render_as_string(hide_password=False)
    server = make_engine(
        make_settings(database_url=url, redis_url=None),
        shared.set(database="").render_as_string(hide_password=False),
    )
    try:
        with server.begin() as conn:
            conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4"))
    except Exception as exc:  # a setup problem, not a test result
        server.dispose()
        pytest.fail(f"MariaDB is not reachable at {MYSQL_URL}: {exc}. Run `make services`.")
    engine = make_engine(make_settings(database_url=url, redis_url=None))
    try:
        with engine.begin() as conn:
            conn.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
            for table in inspect(conn).get_table_names():
                conn.execute(text(f"DROP TABLE IF EXISTS `{table}`"))
            conn.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
        upgrade(engine)
    finally:
        engine.dispose()
    yield url
    try:
        with server.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
    finally:
        server.dispose()


# -- a private Redis ---------------------------------------------------------------------------


class RedisServer:
    """`redis-server` on a port of our own, no persistence; can be flushed and restarted."""

    def __init__(self, port: int, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("the fault tests need redis-server on PATH (apt-get install redis-server)")
        self.binary = binary
        self.port = port
        self.workdir = workdir
        self.log_path = workdir / "redis.log"
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def client(self) -> redis.Redis:
        """A client that never retries (redis-py's default retries turn SHUTDOWN, which
        closes the connection, into seconds of backoff)."""
        return redis.Redis(
            port=self.port, socket_timeout=2, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
        )

    def start(self) -> None:
        argv = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.log_path),
        ]
        self.process = subprocess.Popen(  # our own child; stopped by pid in stop()
            argv, stdin=subprocess.DEVNULL, start_new_session=True
        )
        with self.client() as client:
            wait_until(client.ping, 10, f"redis-server on port {self.port}", interval_s=0.02)

    def flushall(self) -> None:
        with self.client() as client:
            client.flushall()

    def stop(self) -> None:
        """SHUTDOWN NOSAVE (SIGKILL if it does not go): everything in memory is lost."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            with self.client() as client:
                client.shutdown(nosave=True)
        except redis.RedisError:
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def consumers_by_group(client: redis.Redis) -> dict[tuple[str, str], list[dict[str, object]]]:
    """Every stream's consumer groups and their consumers (name, pending, idle)."""
    found: dict[tuple[str, str], list[dict[str, object]]] = {}
    for key in client.scan_iter(_type="STREAM"):
        stream = key.decode()
        for group in client.xinfo_groups(stream):
            name = group["name"].decode()
            consumers = client.xinfo_consumers(stream, name)
            found[(stream, name)] = [
                {"name": c["name"].decode(), "pending": c["pending"], "idle": c["idle"]}
                for c in consumers
            ]
    return found


# -- coffeeshop processes ----------------------------------------------------------------------


def service_env(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """Configuration by environment only (the processes run in a directory without .env)."""
    env = {key: os.environ[key] for key in _PASSED_THROUGH if key in os.environ}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        ENVIRONMENT="test",
        SECRET_KEY=SECRET_KEY,
        LOG_LEVEL="WARNING",
        RATE_LIMIT_ENABLED="false",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(CODE_ROOT),
    )
    env.update(extra)
    return env


def spawn(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """`coffeeshop <args>` as our own child in its own session, output appended to ``log``;
    the caller stops and reaps it."""
    with log.open("ab") as sink:
        return subprocess.Popen(  # our own child, reaped by the caller
            [str(COFFEESHOP), *args],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@dataclass(frozen=True)
class Exit:
    """How one incarnation of a process ended."""

    incarnation: int
    pid: int
    returncode: int
    how: str  # "killed" (by us, SIGKILL) | "stopped" (by us, SIGTERM) | "unexpected"
    uptime_s: float


@dataclass
class Service:
    """One `coffeeshop` subcommand as a child process, restartable, thread-safe."""

    name: str
    args: list[str]
    env: dict[str, str]
    cwd: Path
    exits: list[Exit] = field(default_factory=list)
    incarnations: int = 0
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def log_path(self) -> Path:
        return self.cwd / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def uptime_s(self) -> float:
        return time.monotonic() - self.started_at

    def start(self) -> None:
        with self._lock:
            assert not self.alive, f"{self.name} is already running"
            self.incarnations += 1
            with self.log_path.open("ab") as sink:
                sink.write(f"=== {self.name} #{self.incarnations} ===\n".encode())
                sink.flush()
                self.process = subprocess.Popen(  # our own child; ended by pid only
                    [str(COFFEESHOP), *self.args],
                    env=self.env,
                    cwd=self.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C of pytest does not reach it
                )
            self.started_at = time.monotonic()

    def kill(self) -> int:
        """SIGKILL this incarnation and reap it; returns its return code."""
        with self._lock:
            assert self.process is not None, f"{self.name} was never started"
            assert self.alive, f"{self.name} is not running"
            os.kill(self.process.pid, signal.SIGKILL)
            return self._reap("killed")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; None when it was not running."""
        with self._lock:
            if self.process is None or not self.alive:
                self.reap_unexpected()
                return None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
            return self._reap("stopped")

    def reap_unexpected(self) -> Exit | None:
        """Record an incarnation that ended without us ending it (a crash)."""
        with self._lock:
            if self.process is None or self.alive:
                return None
            if self.exits and self.exits[-1].incarnation == self.incarnations:
                return None  # already recorded
            self._reap("unexpected")
            return self.exits[-1]

    def _reap(self, how: str) -> int:
        assert self.process is not None
        returncode = self.process.wait(10)
        self.exits.append(Exit(self.incarnations, self.process.pid, returncode, how, self.uptime_s))
        return returncode

    def tail(self, lines: int = 40) -> str:
        return tail(self.log_path, lines)


class Services:
    """Every process a test started; all of them are ended at teardown, whatever happened."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.all: list[Service] = []
        self._oneshots: list[subprocess.Popen[str]] = []

    def add(self, name: str, args: list[str], env: dict[str, str]) -> Service:
        assert COFFEESHOP.exists(), f"{COFFEESHOP} is missing; run `make install`"
        service = Service(name, args, env, self.cwd)
        self.all.append(service)
        return service

    def command(
        self, args: list[str], env: dict[str, str], timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        """Run a one-shot `coffeeshop` command to completion (killed after ``timeout_s``)."""
        process = subprocess.Popen(  # our own child; killed by pid at teardown
            [str(COFFEESHOP), *args],
            env=env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._oneshots.append(process)
        try:
            output, _ = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            output, _ = process.communicate(timeout=10)
            raise TimeoutError(
                f"`coffeeshop {' '.join(args)}` did not finish within {timeout_s:.0f} s:\n{output}"
            ) from None
        return subprocess.CompletedProcess(process.args, process.returncode, output, None)

    def kill_all(self) -> None:
        for service in self.all:
            if service.alive:
                service.kill()
        for process in self._oneshots:
            if process.poll() is None:
                _kill_group(process)
                process.wait(10)


def _kill_group(process: subprocess.Popen[str]) -> None:
    """SIGKILL a one-shot command that is still running, with the helpers it started (a
    `replay` runs its jobs in child processes): its process group, which is its own pid
    (``start_new_session``), and the process itself should it have left that group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.kill()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """A working directory without .env for the processes, and their teardown."""
    registry = Services(tmp_path_factory.mktemp("services"))
    try:
        yield registry
    finally:
        registry.kill_all()


def wait_http_healthy(base_url: str, service: Service, timeout_s: float) -> float:
    """Until GET /health answers 200; fails at once if the process exits meanwhile."""

    def healthy() -> bool:
        if not service.alive:
            raise RuntimeError(f"{service.name} exited while starting:\n{service.tail()}")
        return httpx.get(f"{base_url}/health", timeout=1).status_code == 200

    return wait_until(healthy, timeout_s, f"{service.name} answering {base_url}/health")


def connected_to(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds an established TCP connection to local ``port`` (Linux:
    its socket inodes, matched against /proc/net/tcp*). False when that cannot be told."""
    inodes: set[str] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            remote, state, inode = fields[2], fields[3], fields[9]
            if state == "01" and int(remote.rsplit(":", 1)[1], 16) == port and inode in inodes:
                return True
    return False


def reads_every_group(client: redis.Redis, pid: int) -> bool:
    """Whether process ``pid`` has a consumer (named ``<host>-<pid>``) in every consumer group
    of every stream: a projector that is up and reading all of its subscriptions. (Redis
    creates a group's consumer on its first delivery, so this needs traffic.)"""
    suffix = f"-{pid}"
    groups = consumers_by_group(client)
    return bool(groups) and all(
        any(str(consumer["name"]).endswith(suffix) for consumer in consumers)
        for consumers in groups.values()
    )
