"""Tier 3: a real server process — graceful SIGTERM/SIGINT, lifespan hooks, idle CPU."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

APP = Path(__file__).parent / "apps" / "shutdown_app.py"


def start(port: int = 0) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, str(APP), str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "on_start ran"
    assert proc.stdout.readline().strip() == f"listening {port}"  # the readiness signal
    return proc, port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_slow_request_lets_it_finish(sig) -> None:
    proc, port = start()
    result: dict = {}

    def slow() -> None:
        result["r"] = httpx.get(f"http://127.0.0.1:{port}/slow", timeout=10)

    t = threading.Thread(target=slow)
    t.start()
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "slow started"  # the request is in flight
    # an idle keep-alive connection must not hold the shutdown back
    idle = socket.create_connection(("127.0.0.1", port))
    idle.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert b"200 OK" in idle.recv(1000)
    proc.send_signal(sig)
    t.join(10)
    out, err = proc.communicate(timeout=10)
    idle.close()
    assert result["r"].status_code == 200 and result["r"].text == "finished"
    assert result["r"].headers["connection"] == "close"
    assert proc.returncode == 0, err
    assert "on_shutdown ran" in out


def test_new_connections_are_refused_while_draining() -> None:
    proc, port = start()
    t = threading.Thread(target=lambda: httpx.get(f"http://127.0.0.1:{port}/slow", timeout=10))
    t.start()
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "slow started"  # the request is in flight
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    t.join(10)
    proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_idle_server_uses_no_cpu() -> None:
    proc, port = start()
    try:
        httpx.get(f"http://127.0.0.1:{port}/")  # warm
        time.sleep(0.2)
        before = cpu_seconds(proc.pid)
        time.sleep(2.0)
        used = cpu_seconds(proc.pid) - before
        assert used <= 0.02, f"idle server used {used:.3f}s of CPU in 2s"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def test_failing_on_start_hook_aborts_with_a_clear_message(tmp_path) -> None:
    app = tmp_path / "bad_app.py"
    app.write_text(
        "from corkweb import App\n"
        "app = App(templates=None)\n"
        "@app.on_start\n"
        "def boom():\n"
        "    raise RuntimeError('database unreachable')\n"
        "app.run(port=0)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, str(app)], capture_output=True, text=True,
                          env=env, timeout=20)
    assert proc.returncode != 0
    assert "on_start hook failed" in proc.stderr and "database unreachable" in proc.stderr


def test_a_request_sent_on_an_idle_connection_during_the_drain_is_answered() -> None:
    """The drain starts while a keep-alive connection is idle; its client sends one more
    request (one already on the wire, in practice): it is answered with connection: close,
    then the connection closes; a connection that stays quiet is closed after drain_idle."""
    import asyncio

    from corkweb import App, Limits

    app = App(templates=None, limits=Limits(drain_idle=5.0))

    @app.get("/")
    def home(res, req):
        res.end("ok")

    async def main() -> None:
        port = (await app.start("127.0.0.1", 0))[0][1]
        request = b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        quiet_reader, quiet_writer = await asyncio.open_connection("127.0.0.1", port)
        for w in (writer, quiet_writer):
            w.write(request)
        for r in (reader, quiet_reader):
            head = await r.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and b"connection: close" not in head
            assert await r.readexactly(2) == b"ok"
        loop = asyncio.get_running_loop()
        started = loop.time()
        stopping = asyncio.ensure_future(app.stop(timeout=10))
        await asyncio.sleep(0)  # the drain has begun: both connections are idle
        assert not stopping.done()
        writer.write(request)
        answer = await reader.read()  # until the server closes
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nok")
        assert b"connection: close\r\n" in answer
        assert await quiet_reader.read() == b""  # closed by the server once quiet
        await stopping
        assert 5.0 <= loop.time() - started < 9.0  # drain_idle, not the drain timeout
        for w in (writer, quiet_writer):
            w.close()

    asyncio.run(main())


def test_a_connection_accepted_as_the_drain_begins_is_served_then_closed() -> None:
    """A connection the loop accepted just before the listening socket closed reaches
    connection_made with the drain under way: its request is answered (connection: close),
    not refused with 503; one that sends nothing is closed after drain_idle."""
    import asyncio

    from protocol_helpers import connect, get

    from corkweb import App, Limits

    app = App(templates=None, limits=Limits(drain_idle=0.05))
    app.get("/")(lambda res, req: res.end("ok"))

    async def main() -> None:
        loop = asyncio.get_running_loop()
        conn, transport = connect(app, loop)
        conn.state.draining = True
        late, late_transport = connect(app, loop, state=conn.state)
        quiet, quiet_transport = connect(app, loop, state=conn.state)
        late.data_received(get())
        assert late_transport.data.startswith(b"HTTP/1.1 200 OK\r\n"), late_transport.data
        assert b"connection: close\r\n" in late_transport.data and late_transport.closed
        assert not quiet_transport.closed and quiet_transport.writes == []
        await asyncio.sleep(0.1)  # drain_idle passes with nothing received
        assert quiet_transport.closed and quiet_transport.writes == []

    asyncio.run(main())
