"""Tier 3: count the send syscalls of a real server process with strace (DESIGN.md §1)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import parse_responses

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")

APP = Path(__file__).parent / "apps" / "syscall_app.py"
SEND = re.compile(r"^(\d+)\s+(write|writev|sendto|sendmsg|send)\((\d+),")
ACCEPT = re.compile(r"^(\d+)\s+accept4?\(.*\)\s+=\s+(\d+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def exchange(port: int, payload: bytes, responses: int) -> list:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        data = b""
        while len(parse_responses(data)) < responses:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    return parse_responses(data)


def sends_per_connection(trace: str) -> list[int]:
    """Number of send-type syscalls made on each accepted socket, in accept order."""
    counts: dict[int, int] = {}
    order: list[int] = []
    for line in trace.splitlines():
        m = ACCEPT.match(line)
        if m:
            fd = int(m.group(2))
            counts[fd] = 0
            order.append(fd)
            continue
        m = SEND.match(line)
        if m and int(m.group(3)) in counts:
            counts[int(m.group(3))] += 1
    return [counts[fd] for fd in order]


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    port = free_port()
    out = tmp_path_factory.mktemp("strace") / "trace.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        ["strace", "-f", "-e", "trace=network,write,writev", "-o", str(out),
         sys.executable, str(APP), str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None, "server under strace exited"
            assert time.monotonic() < deadline, "server under strace did not start"
            time.sleep(0.05)
    results = {
        "headers": exchange(port, b"GET /headers HTTP/1.1\r\nHost: a\r\n\r\n", 1),
        "pipelined": exchange(port, b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n" * 16, 16),
        "async": exchange(port, b"GET /async HTTP/1.1\r\nHost: a\r\n\r\n", 1),
    }
    time.sleep(0.1)
    # Stop the traced Python process (strace's child); strace then exits by itself.
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    # the readiness probe was the first accepted connection: it made no request
    return results, sends_per_connection(out.read_text())[1:]


def test_status_three_headers_cookie_and_end_is_one_send(traced) -> None:
    results, sends = traced
    (r,) = results["headers"]
    assert r.body == b"headers" and r.header("x-three") == "3" and r.header("set-cookie")
    assert sends[0] == 1


def test_sixteen_pipelined_requests_are_one_send(traced) -> None:
    results, sends = traced
    assert [r.body for r in results["pipelined"]] == [b"Hello, World!"] * 16
    assert sends[1] == 1


def test_async_end_after_await_is_one_send(traced) -> None:
    results, sends = traced
    assert results["async"][0].header("x-after") == "await"
    assert sends[2] == 1
