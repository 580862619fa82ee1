"""A handler that awaits two PostgreSQL queries, then answers: one send syscall (strace)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from strace_helpers import (
    exchange,
    free_port,
    needs_strace,
    sends_per_connection,
    under_strace,
    wait_listening,
)

pytestmark = needs_strace
pytest.importorskip("asyncpg", reason="asyncpg not installed (pip install -e .[test])")

APP = Path(__file__).parent / "apps" / "pg_syscall_app.py"


def test_answer_after_two_awaited_queries_is_one_send(pg_dsn, tmp_path) -> None:
    port = free_port()
    out = tmp_path / "trace.txt"
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as stderr, \
            under_strace([sys.executable, str(APP), str(port), pg_dsn], out, stderr=stderr) as proc:
        wait_listening(proc, port, errors)
        answers = [exchange(port, b"GET /two-queries HTTP/1.1\r\nHost: a\r\n\r\n", 1)[0]
                   for _ in range(2)]
    for r in answers:
        assert r.status == 200 and json.loads(r.body) == {"answer": 42}
        assert r.header("x-before") == "first await" and r.header("x-after") == "second await"
    # the readiness probe was the first accepted connection; then two requests, each
    # answered in one send although it waited twice on the database's socket
    trace = out.read_text()
    assert sends_per_connection(trace)[1:] == [1, 1]
    # and the database was really talked to, over its own socket
    assert "connect(" in trace and f"htons({pg_dsn.split(':')[2].split('/')[0]})" in trace
