"""One structured JSON access line per request."""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from coffeeshop.api.app import create_app
from tests.conftest import make_settings
from tests.e2e.helpers import PASSWORD, Org, bearer


@dataclass
class Logged:
    client: TestClient
    stream: io.StringIO

    def records(self) -> list[dict[str, Any]]:
        """Every line written since the last call, each parsed as JSON (it must be)."""
        text, records = self.stream.getvalue(), []
        self.stream.seek(0)
        self.stream.truncate()
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                pytest.fail(f"not a JSON log line: {line!r}")
        return records


@pytest.fixture
def logged(mysql_org: Org) -> Iterator[Logged]:
    """An app logging at INFO as in production, its stderr handler redirected to a buffer.

    It is built after the shared apps (``mysql_org``): each app configures logging anew.
    """
    app = create_app(make_settings(log_level="INFO", log_format="json"))

    async def _boom() -> None:
        raise RuntimeError("kaboom")

    app.add_api_route("/boom", _boom)
    root = logging.getLogger()
    [handler] = [h for h in root.handlers if type(h) is logging.StreamHandler]
    assert handler.stream is sys.stderr  # the app logs to stderr
    stream = io.StringIO()
    handler.setStream(stream)
    try:
        with TestClient(app) as client:
            stream.seek(0)
            stream.truncate()  # drop whatever startup wrote
            yield Logged(client, stream)
    finally:
        handler.setStream(sys.__stderr__)
        root.setLevel(logging.WARNING)


def _access(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("logger") == "coffeeshop.access"]


def test_one_json_access_line_per_request(logged: Logged, mysql_org: Org) -> None:
    org, client = mysql_org, logged.client
    responses = [
        client.get("/health"),
        client.get("/api/v1/users", params={"limit": 5}, headers=org.owner.headers),
        client.get("/api/v1/tables", headers=org.pos_headers),
        client.get("/api/v1/users"),
        client.delete(f"/api/v1/api-keys/{uuid.uuid4()}", headers=org.manager.headers),
        client.get("/api/v1/no-such-route", headers={"X-Request-ID": "my-trace-7"}),
    ]
    lines = _access(logged.records())
    assert len(lines) == len(responses), lines
    for line, response in zip(lines, responses, strict=True):
        assert line["method"] == response.request.method
        assert line["status"] == response.status_code
        assert line["request_id"] == response.headers["x-request-id"]
        assert isinstance(line["duration_ms"], int | float)
        assert line["duration_ms"] >= 0
        assert line["level"] in {"info", "warning"}
        assert "timestamp" in line

    health, users, tables, anonymous, revoke, unknown = lines
    assert health["route"] == "/health"
    assert "restaurant_id" not in health
    assert users["route"] == "/api/v1/users"
    assert users["restaurant_id"] == org.owner.restaurant_id
    assert tables["route"] == "/api/v1/tables"
    assert tables["restaurant_id"] == org.owner.restaurant_id  # a POS key is a tenant too
    assert anonymous["status"] == 401
    assert "restaurant_id" not in anonymous
    assert revoke["route"] == "/api/v1/api-keys/{key_id}"  # the template, not the raw path
    assert revoke["status"] == 404
    assert unknown["status"] == 404
    assert unknown["request_id"] == "my-trace-7"
    assert unknown["route"] != "/api/v1/no-such-route"


def test_secrets_never_reach_the_log(logged: Logged, mysql_org: Org) -> None:
    client = logged.client
    client.post(
        "/api/v1/auth/token", data={"username": mysql_org.owner.email, "password": PASSWORD}
    )
    client.get("/api/v1/me", headers=mysql_org.owner.headers)
    client.get("/api/v1/me", headers=mysql_org.pos_headers)
    client.get("/api/v1/me", headers=bearer("forged.token.here"))
    records = logged.records()
    assert len(_access(records)) == 4
    text = json.dumps(records)
    for secret in (PASSWORD, mysql_org.owner.token, mysql_org.pos_key, "forged.token.here"):
        assert secret not in text


def test_a_500_is_logged_with_its_traceback_and_request_id(logged: Logged) -> None:
    response = logged.client.get("/boom", headers={"X-Request-ID": "boom-1"})
    assert response.status_code == 500
    records = logged.records()
    [access] = _access(records)
    assert access["status"] == 500
    assert access["request_id"] == "boom-1"
    assert access["route"] == "/boom"
    errors = [r for r in records if r.get("level") == "error"]
    assert errors, records
    assert all(r["request_id"] == "boom-1" for r in errors)
    logged_error = json.dumps(errors)
    assert "kaboom" in logged_error  # the details are in the log, not in the response
    assert "RuntimeError" in logged_error
    assert "_boom" in logged_error  # the stack: which function raised
    assert "kaboom" not in response.text
