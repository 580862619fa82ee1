"""The corking contract for hosted ASGI apps, counted in send syscalls with strace: the
``http.response.start`` and body messages an app sends within one step leave in one write."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_syscalls import ACCEPT, SEND, exchange, free_port

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")

APPS = Path(__file__).parent / "apps"


def sends_per_connection(trace: str) -> list[int]:
    """Send-type syscalls per accepted socket, in accept order (a descriptor number reused
    by a later connection starts a new count)."""
    counts: list[int] = []
    current: dict[int, int] = {}
    for line in trace.splitlines():
        m = ACCEPT.match(line)
        if m:
            current[int(m.group(2))] = len(counts)
            counts.append(0)
            continue
        m = SEND.match(line)
        if m and int(m.group(3)) in current:
            counts[current[int(m.group(3))]] += 1
    return counts


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    import socket

    port = free_port()
    out = tmp_path_factory.mktemp("strace") / "trace.txt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(APPS), *sys.path])}
    env = {k: v for k, v in env.items() if not k.startswith("CORKWEB_")}
    proc = subprocess.Popen(
        ["strace", "-f", "-e", "trace=network,write,writev", "-o", str(out),
         sys.executable, "-m", "corkweb", "run", "--interface", "asgi", "--port", str(port),
         "--log-level", "warning", "asgi_syscall_app:app"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=APPS,
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
        "parts": exchange(port, b"GET /parts HTTP/1.1\r\nHost: a\r\n\r\n", 1),
        "after-await": exchange(port, b"GET /after-await HTTP/1.1\r\nHost: a\r\n\r\n", 1),
        "pipelined": exchange(port, b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i
                                             for i in range(16)), 16),
    }
    time.sleep(0.1)  # let strace write out the last lines
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    for child in children:
        os.kill(int(child), signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    return results, sends_per_connection(out.read_text())[1:]


def test_start_and_body_in_one_step_are_one_send(traced) -> None:
    results, sends = traced
    (r,) = results["headers"]
    assert r.status == 201 and r.body == b"headers" and r.header("x-two") == "2"
    assert r.header("set-cookie") == "session=abc; HttpOnly"
    assert sends[0] == 1


def test_start_and_several_body_parts_in_one_step_are_one_send(traced) -> None:
    results, sends = traced
    (r,) = results["parts"]
    assert r.header("transfer-encoding") == "chunked" and r.body == b"one two three"
    assert sends[1] == 1


def test_start_before_an_await_and_body_after_it_are_one_send(traced) -> None:
    results, sends = traced
    (r,) = results["after-await"]
    assert r.header("x-after") == "await" and r.body == b"async"
    assert sends[2] == 1


def test_pipelined_requests_keep_order_and_each_answer_is_one_send(traced) -> None:
    results, sends = traced
    assert [r.body for r in results["pipelined"]] == [b"Hello, World!"] * 16
    # Each answer is one write at most (on Python 3.12, eager tasks put all 16 in one).
    assert 1 <= sends[3] <= 16
    if sys.version_info >= (3, 12):
        assert sends[3] == 1
