"""Tier 3: count the send syscalls of a real server process with strace (DESIGN.md §1)."""

from __future__ import annotations

import sys
import time
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

APP = Path(__file__).parent / "apps" / "syscall_app.py"


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    port = free_port()
    out = tmp_path_factory.mktemp("strace") / "trace.txt"
    with under_strace([sys.executable, str(APP), str(port)], out) as proc:
        wait_listening(proc, port)
        results = {
            "headers": exchange(port, b"GET /headers HTTP/1.1\r\nHost: a\r\n\r\n", 1),
            "pipelined": exchange(port, b"GET /plain HTTP/1.1\r\nHost: a\r\n\r\n" * 16, 16),
            "async": exchange(port, b"GET /async HTTP/1.1\r\nHost: a\r\n\r\n", 1),
        }
        time.sleep(0.1)
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
