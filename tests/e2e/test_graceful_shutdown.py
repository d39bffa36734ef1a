"""SIGTERM to `coffeeshop serve`: the request in flight is answered, the embedded read side
stops after its batch, and the process exits 0 (what a process manager calls a clean stop)."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.faults.conftest import free_port, service_env, spawn, tail


def test_sigterm_answers_the_request_in_flight_and_exits_0(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = service_env(f"sqlite:///{tmp_path / 'shop.db'}", "", CONSISTENCY_TIMEOUT_MS="3000")
    log = tmp_path / "serve.log"
    server = spawn(["serve", "--port", str(port)], env, tmp_path, log)
    try:
        with httpx.Client(base_url=base, timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, tail(log)
                time.sleep(0.1)
            email = "owner@graceful.example"
            signed = http.post(
                "/api/v1/signup",
                json={"restaurant_name": "Graceful", "email": email, "password": "pw-12345678"},
            )
            assert signed.status_code == 201, signed.text
            token = http.post(
                "/api/v1/auth/token", data={"username": email, "password": "pw-12345678"}
            ).json()["access_token"]

            answer: dict[str, Any] = {}

            def slow_read() -> None:
                began = time.monotonic()
                # A position the projection will never reach: the server waits 3 s for it.
                response = http.get(
                    "/api/v1/orders",
                    params={"min_position": 1_000_000},
                    headers={"Authorization": f"Bearer {token}"},
                )
                answer.update(response=response, seconds=time.monotonic() - began)

            reader = threading.Thread(target=slow_read)
            reader.start()
            time.sleep(0.7)  # the read is waiting inside the server
            server.send_signal(signal.SIGTERM)
            reader.join(20)

        response = answer["response"]
        assert response.status_code == 200, response.text
        assert response.headers["x-projection-stale"] == "true"
        assert answer["seconds"] >= 2.5
        assert server.wait(20) == 0, tail(log)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    assert "Traceback" not in log.read_text(errors="replace"), tail(log)
