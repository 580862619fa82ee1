"""examples/middleware: timing on every route, bearer auth and an async admin check."""

from __future__ import annotations

import logging

import pytest
from example_loader import load_example

from corkweb.testing import TestClient


@pytest.fixture(scope="module")
def client():
    with TestClient(load_example("middleware").app) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_public_route_has_server_timing(client) -> None:
    r = client.get("/")
    assert r.text == "public page"
    assert r.headers["server-timing"].startswith("app;dur=")


def test_auth_rejects_missing_and_unknown_tokens(client) -> None:
    for headers in ({}, bearer("nope"), {"authorization": "Basic alice-token"}):
        r = client.get("/api/me", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert "server-timing" in r.headers  # the global middleware ran first


def test_auth_passes_the_user_to_the_handler(client) -> None:
    assert client.get("/api/me", headers=bearer("bob-token")).json() == {"name": "bob"}


def test_nested_group_with_async_middleware(client) -> None:
    assert client.get("/api/admin/stats", headers=bearer("bob-token")).status_code == 403
    r = client.get("/api/admin/stats", headers=bearer("alice-token"))
    assert r.json() == {"users": 2, "asked_by": "alice"}
    assert "server-timing" in r.headers


def test_timing_logs_each_response(client, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="example.timing"):
        client.get("/")
        client.get("/api/me")
    messages = [rec.getMessage() for rec in caplog.records]
    assert any(m.startswith("GET / -> 200 in ") for m in messages)
    assert any(m.startswith("GET /api/me -> 401 in ") for m in messages)
