"""The corking contract for hosted ASGI apps, counted in send syscalls with strace: the
``http.response.start`` and body messages an app sends within one step leave in one write."""

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
    server_env,
    under_strace,
    wait_listening,
)

pytestmark = needs_strace

APPS = Path(__file__).parent / "apps"


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    port = free_port()
    out = tmp_path_factory.mktemp("strace") / "trace.txt"
    env = {k: v for k, v in server_env(APPS).items() if not k.startswith("CORKWEB_")}
    command = [sys.executable, "-m", "corkweb", "run", "--interface", "asgi", "--port", str(port),
               "--log-level", "warning", "asgi_syscall_app:app"]
    with under_strace(command, out, env=env, cwd=APPS) as proc:
        wait_listening(proc, port)
        results = {
            "headers": exchange(port, b"GET /headers HTTP/1.1\r\nHost: a\r\n\r\n", 1),
            "parts": exchange(port, b"GET /parts HTTP/1.1\r\nHost: a\r\n\r\n", 1),
            "after-await": exchange(port, b"GET /after-await HTTP/1.1\r\nHost: a\r\n\r\n", 1),
            "pipelined": exchange(port, b"".join(b"GET /%d HTTP/1.1\r\nHost: a\r\n\r\n" % i
                                                 for i in range(16)), 16),
        }
        time.sleep(0.1)  # let strace write out the last lines
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
    # Calls that finish in their first step run inside the read (corkweb/asgi/runner.py):
    # the sixteen answers leave in one write, as a native handler's do. (Python 3.10 gives
    # each call a task: one write per answer at most.)
    if sys.version_info >= (3, 11):
        assert sends[3] == 1
    else:
        assert 1 <= sends[3] <= 16
