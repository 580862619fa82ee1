"""examples/batteries: static files with a precompressed sibling, CORS, compression and a
signed-cookie session, together."""

from __future__ import annotations

import pytest
from example_loader import load_example

from corkweb.testing import TestClient

FRONT = "http://localhost:5173"


@pytest.fixture
def client():
    with TestClient(load_example("batteries").create_app("test-secret-0123456789")) as client:
        yield client


def test_home_and_static(client) -> None:
    r = client.get("/")
    assert r.status_code == 200 and "/static/app.js" in r.text
    r = client.get("/static/app.js", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and "fetch(" in r.text
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert client.get("/static/app.js", headers={"if-none-match": r.headers["etag"],
                                                 "accept-encoding": "gzip"}).status_code == 304


def test_session_counter(client) -> None:
    assert [client.get("/api/visits").json()["visits"] for _ in range(3)] == [1, 2, 3]


def test_cors(client) -> None:
    r = client.options("/api/visits", headers={"origin": FRONT,
                                               "access-control-request-method": "GET"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == FRONT
    r = client.get("/api/visits", headers={"origin": FRONT})
    assert r.headers["access-control-allow-credentials"] == "true"
    r = client.get("/api/visits", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers


def test_compression(client) -> None:
    r = client.get("/api/report", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and len(r.json()["rows"]) == 200
    r = client.get("/api/report", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in r.headers
