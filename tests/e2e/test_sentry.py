"""Sentry for real: a local HTTP server stands in for the ingest endpoint, a route fails,
and the error arrives once, with our request id, environment and release, and no PII."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
import sentry_sdk
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from coffeeshop.api.app import create_app
from coffeeshop.api.observability import release
from tests.conftest import make_settings

SECRET_HEADER = "Bearer do-not-leak-this-token"


class _Ingest(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
        self.received.append({"path": self.path, "raw": raw.decode("utf-8", "replace")})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args: object) -> None:
        return None


@pytest.fixture
def ingest() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    _Ingest.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://publickey@127.0.0.1:{server.server_address[1]}/42", _Ingest.received
    sentry_sdk.init()  # no DSN: the rest of the session reports nothing
    server.shutdown()


def _events(received: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The error events in the envelopes (one JSON object per line: header, item, payload)."""
    events = []
    for envelope in received:
        lines = envelope["raw"].splitlines()
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


def _boom() -> None:
    raise RuntimeError("the espresso machine exploded")


def test_an_unhandled_error_reaches_sentry_with_the_request_id(
    ingest: tuple[str, list[dict[str, Any]]], mysql_engine: Engine
) -> None:
    dsn, received = ingest
    app = create_app(make_settings(sentry_dsn=dsn, environment="staging"))
    app.add_api_route("/boom", _boom, methods=["GET"])
    with TestClient(app) as client:
        answer = client.get("/boom", headers={"Authorization": SECRET_HEADER})
    assert answer.status_code == 500
    assert sentry_sdk.flush(timeout=5) is None

    assert all(envelope["path"] == "/api/42/envelope/" for envelope in received)
    (event,) = _events(received)  # once: the log line does not make a second event
    assert event["tags"]["request_id"] == answer.headers["x-request-id"]
    assert event["tags"]["process"] == "api"
    assert event["environment"] == "staging"
    assert event["release"] == release()
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "RuntimeError"
    assert "espresso machine" in exception["value"]
    everything = "".join(envelope["raw"] for envelope in received)
    assert "do-not-leak-this-token" not in everything
    assert "ip_address" not in everything  # no client IP either
    assert event["request"]["headers"]["authorization"] == "[Filtered]"


def test_no_dsn_sends_nothing(
    ingest: tuple[str, list[dict[str, Any]]], mysql_engine: Engine
) -> None:
    _dsn, received = ingest
    app = create_app(make_settings())
    app.add_api_route("/boom", _boom, methods=["GET"])
    with TestClient(app) as client:
        assert client.get("/boom").status_code == 500
    sentry_sdk.flush(timeout=2)
    assert received == []
