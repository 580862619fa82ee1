"""A handler that awaits two PostgreSQL queries, then answers: one send syscall (strace)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_syscalls import exchange, free_port, sends_per_connection

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")
pytest.importorskip("asyncpg", reason="asyncpg not installed (pip install -e .[test])")

APP = Path(__file__).parent / "apps" / "pg_syscall_app.py"


def test_answer_after_two_awaited_queries_is_one_send(pg_dsn, tmp_path) -> None:
    port = free_port()
    out = tmp_path / "trace.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as stderr:
        proc = subprocess.Popen(
            ["strace", "-f", "-e", "trace=network,write,writev", "-o", str(out),
             sys.executable, str(APP), str(port), pg_dsn],
            stdout=subprocess.DEVNULL, stderr=stderr, env=env,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, errors.read_text()
                assert time.monotonic() < deadline, "server under strace did not start"
                time.sleep(0.05)
        answers = [exchange(port, b"GET /two-queries HTTP/1.1\r\nHost: a\r\n\r\n", 1)[0]
                   for _ in range(2)]
    finally:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        for child in children:
            os.kill(int(child), signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    for r in answers:
        assert r.status == 200 and json.loads(r.body) == {"answer": 42}
        assert r.header("x-before") == "first await" and r.header("x-after") == "second await"
    # the readiness probe was the first accepted connection; then two requests, each
    # answered in one send although it waited twice on the database's socket
    trace = out.read_text()
    assert sends_per_connection(trace)[1:] == [1, 1]
    # and the database was really talked to, over its own socket
    assert "connect(" in trace and f"htons({pg_dsn.split(':')[2].split('/')[0]})" in trace
