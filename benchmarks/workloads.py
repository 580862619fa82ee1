"""The workloads: what each measures, how it is driven, and how its answer is checked.

Every server serves the same paths (see ``benchmarks/apps``). Before a workload is loaded,
one request checks the answer, so a server that answers wrongly (or 404) is reported as a
failure instead of being timed.
"""
from __future__ import annotations

import http.client
import json
from dataclasses import dataclass

UPLOAD_SIZE = 1024 * 1024
STATIC_FILES = {"64k.bin": 64 * 1024, "10m.bin": 10 * 1024 * 1024}
PAGE_ROWS = 20


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    path: str
    method: str = "GET"
    pipeline: int = 1
    body_size: int = 0
    websocket: bool = False
    # DESIGN.md §5's goals, as ratios of corkweb's server CPU per request to another server's
    # measured in the same run: absolute figures change with the CPU, ratios much less.
    goal_vs_socketify: float | None = None
    goal_vs_floor: float | None = None


HTTP_WORKLOADS = {
    w.name: w
    for w in (
        Workload("plaintext", "plaintext", "/plaintext",
                 goal_vs_socketify=0.85, goal_vs_floor=1.3),
        Workload("json", "JSON", "/json", goal_vs_socketify=0.8, goal_vs_floor=1.4),
        Workload("param", "route parameter", "/user/42", goal_vs_socketify=0.8,
                 goal_vs_floor=1.4),
        Workload("page", "Jinja page", "/page", goal_vs_socketify=0.65),
        Workload("pipelined", "plaintext, 16 pipelined", "/plaintext", pipeline=16,
                 goal_vs_socketify=0.75, goal_vs_floor=2.7),
        Workload("ws", "WebSocket echo, per message", "/ws", websocket=True,
                 goal_vs_socketify=0.5),
        Workload("static-64k", "static file 64 KiB", "/static/64k.bin"),
        Workload("static-10m", "static file 10 MiB", "/static/10m.bin"),
        Workload("upload", "upload 1 MiB", "/upload", method="POST", body_size=UPLOAD_SIZE),
    )
}

# Measurements that are not a load of one path; each has its own section in the results.
EXTRA = {
    "idle": "idle CPU % with no traffic",
    "conn-memory": "memory per idle keep-alive connection",
    "million": "RSS growth over a million requests",
}
DEFAULT = [*HTTP_WORKLOADS, "idle", "conn-memory"]  # "million" is opt-in: it takes minutes


def check(host: str, port: int, w: Workload) -> str | None:
    """One request to ``w.path``; a description of what is wrong with the answer, or None."""
    if w.websocket:
        return None  # the echo client checks every message it gets back
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        body = b"x" * w.body_size if w.method == "POST" else None
        headers = {"Content-Type": "application/octet-stream"} if body is not None else {}
        conn.request(w.method, w.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        ctype = resp.getheader("content-type") or ""
    except (OSError, http.client.HTTPException) as e:
        return f"request failed: {e!r}"
    finally:
        conn.close()
    if resp.status != 200:
        return f"status {resp.status}: {data[:200]!r}"
    return _check_body(w, ctype, data)


def _check_body(w: Workload, ctype: str, data: bytes) -> str | None:
    expected: dict[str, tuple[str, object]] = {
        "plaintext": ("text/plain", b"Hello, World!"),
        "pipelined": ("text/plain", b"Hello, World!"),
        "param": ("text/plain", b"User 42"),
        "upload": ("", str(UPLOAD_SIZE).encode()),
    }
    if w.name in expected:
        want_type, want = expected[w.name]
        if data != want:
            return f"body {data[:100]!r}, expected {want!r}"
        if want_type and not ctype.startswith(want_type):
            return f"content-type {ctype!r}, expected {want_type}"
    elif w.name == "json":
        if not ctype.startswith("application/json"):
            return f"content-type {ctype!r}, expected application/json"
        if json.loads(data) != {"message": "Hello, World!"}:
            return f"body {data[:100]!r}"
    elif w.name == "page":
        if not ctype.startswith("text/html"):
            return f"content-type {ctype!r}, expected text/html"
        if data.count(b"<tr>") != PAGE_ROWS + 1 or b"&lt;b&gt;" not in data:
            return "the page lacks its rows or was not autoescaped"
    elif w.name in DB_WORKLOADS:
        return _check_database(w, ctype, data)
    elif w.name.startswith("static-"):
        size = STATIC_FILES[w.path.rsplit("/", 1)[1]]
        if len(data) != size:
            return f"{len(data)} bytes, expected {size}"
    return None


# The TechEmpower database types (benchmarks/database.py; not in the default run: they need a
# PostgreSQL server, which that module starts). Goals are ratios to the best peer.
DB_WORKLOADS = {
    w.name: w
    for w in (
        Workload("db", "single query", "/db"),
        Workload("queries", "20 queries", "/queries?queries=20"),
        Workload("fortunes", "fortunes", "/fortunes"),
        Workload("updates", "20 updates", "/updates?queries=20"),
    )
}
DB_GOALS = {"db": 0.6, "fortunes": 0.6, "queries": 0.85, "updates": 0.85}


def _check_database(w: Workload, ctype: str, data: bytes) -> str | None:
    if w.name == "fortunes":
        if not ctype.startswith("text/html"):
            return f"content-type {ctype!r}, expected text/html"
        text = data.decode("utf-8", "replace")
        if (text.count("<tr>") != 14 or "&lt;script&gt;" not in text
                or "Additional fortune added at request time." not in text
                or "フレームワークのベンチマーク" not in text):
            return "the fortunes table lacks rows, the added fortune, UTF-8 or escaping"
        return None
    if not ctype.startswith("application/json"):
        return f"content-type {ctype!r}, expected application/json"
    body = json.loads(data)
    worlds = [body] if w.name == "db" else body
    if w.name != "db" and len(worlds) != 20:
        return f"{len(worlds)} rows, expected 20"
    for world in worlds:
        if not (isinstance(world, dict) and set(world) == {"id", "randomNumber"}
                and 1 <= world["id"] <= 10_000 and isinstance(world["randomNumber"], int)):
            return f"not a World row: {world!r}"
    return None
