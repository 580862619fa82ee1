"""Worker processes started by ``corkweb run --workers N``: balance, restart, graceful stop."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from typing import Any

import httpx
import pytest
from cli_process import CLIProcess

from corkweb.server.workers import bind_sockets, describe_exit, reuse_port_balances

linux_only = pytest.mark.skipif(not reuse_port_balances(), reason="SO_REUSEPORT balancing")


def pids(port: int, n: int) -> set[str]:
    """The worker pids that answered ``n`` requests, each on a new connection."""
    seen = set()
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /pid HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), data
        seen.add(body.decode())
    return seen


@linux_only
def test_two_workers_both_serve_and_survive_a_killed_worker() -> None:
    with CLIProcess("run", "cli_app:app", "--port", "0", "--workers", "2") as cli:
        cli.ready()
        first = pids(cli.port, 40)
        # SO_REUSEPORT hashes each new connection to one of the two sockets: 40 connections
        # all on one worker would happen once in 2**39 runs.
        assert len(first) == 2, first
        assert str(os.getpid()) not in first
        victim = int(sorted(first)[0])
        mark = cli.mark()
        os.kill(victim, signal.SIGKILL)
        m = cli.wait_for(rf"worker (\d) \(pid {victim}\) killed by signal SIGKILL; "
                         r"starting a new one", after=mark)
        new = cli.wait_for(rf"worker {m.group(1)} ready \(pid (\d+)\)", after=mark)
        replacement = new.group(1)
        after = pids(cli.port, 40)
        assert replacement in after and str(victim) not in after, after
        assert len(after) == 2
        assert cli.stop() == 0, cli.output


def test_sigterm_under_load_loses_no_request() -> None:
    """SIGTERM with slow requests, a WebSocket and an SSE stream open on two workers: every
    request finishes with 200, the WebSocket gets close 1001, the event stream ends cleanly,
    the on_shutdown hooks run and the exit status is 0."""
    from concurrent.futures import ThreadPoolExecutor

    from websockets.sync.client import connect

    with CLIProcess("run", "cli_app:app", "--port", "0", "--workers", "2") as cli, \
            ThreadPoolExecutor(8) as pool:
        cli.ready()
        slow = [pool.submit(httpx.get, cli.url + "/slow?s=0.5", timeout=15) for _ in range(6)]
        with connect(f"ws://127.0.0.1:{cli.port}/ws", open_timeout=5) as ws:
            mark = _under_load(cli, ws, slow)
        code = cli.stop()
        assert code == 0, cli.output
        cli.wait_for("received SIGTERM: stopping 2 workers gracefully", after=mark)
        assert cli.output.count("on_shutdown ran") == 2
        assert "killed" not in cli.output and "Traceback" not in cli.output


def _under_load(cli: CLIProcess, ws: Any, slow: list[Any]) -> int:
    from websockets.exceptions import ConnectionClosed

    ws.send("hi")
    assert ws.recv(timeout=5) == "hi"
    sse = socket.create_connection(("127.0.0.1", cli.port), timeout=10)
    sse.sendall(b"GET /events HTTP/1.1\r\nhost: x\r\n\r\n")
    head = b""
    while b"data: first" not in head:
        head += sse.recv(4096)
    cli.wait_count("slow request started", 6)
    mark = cli.mark()
    cli.proc.send_signal(signal.SIGTERM)

    results = [f.result(15) for f in slow]
    assert [(r.status_code, r.text) for r in results] == [(200, "finished")] * 6
    with pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    rest = b""
    while chunk := sse.recv(4096):
        rest += chunk
    sse.close()
    assert (head + rest).endswith(b"0\r\n\r\n")  # the chunked body was terminated
    return mark


def test_a_worker_that_cannot_boot_stops_the_supervisor() -> None:
    with CLIProcess("run", "no_such_module:app", "--port", "0", "--workers", "2") as cli:
        code = cli.proc.wait(30)
        cli.stop()
        assert code == 3, cli.output
        assert "cannot import 'no_such_module'" in cli.output
        assert "before every worker was ready: the app cannot start" in cli.output


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads /proc")
def test_shared_socket_fallback_serves_and_idles_at_zero_cpu() -> None:
    with CLIProcess("run", "cli_app:app", "--port", "0", "--workers", "2",
                    "--no-reuse-port") as cli:
        cli.ready()
        worker = int(httpx.get(cli.url + "/pid", timeout=5).text)
        before = _cpu(cli.proc.pid), _cpu(worker)
        time.sleep(1.0)  # measuring idle CPU over a period needs the period
        after = _cpu(cli.proc.pid), _cpu(worker)
        # The supervisor sleeps in select() without a timeout; the worker in its loop.
        assert after[0] - before[0] <= 0.02 and after[1] - before[1] <= 0.02, (before, after)
        assert cli.stop() == 0, cli.output


@linux_only
def test_bind_sockets_one_reuseport_socket_per_worker() -> None:
    slots = bind_sockets([{"host": "127.0.0.1", "port": 0}], 3)
    try:
        socks = [slot[0] for slot in slots]
        assert len({id(s) for s in socks}) == 3
        assert len({s.getsockname()[1] for s in socks}) == 1
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in socks)
    finally:
        for slot in slots:
            slot[0].close()


def test_bind_sockets_shared_when_reuse_port_is_off(tmp_path) -> None:
    slots = bind_sockets([{"host": "127.0.0.1", "port": 0}, {"uds": str(tmp_path / "s")}], 2,
                         reuse_port=False)
    try:
        assert slots[0][0] is slots[1][0] and slots[0][1] is slots[1][1]
        assert slots[0][1].family == socket.AF_UNIX
    finally:
        slots[0][0].close()
        slots[0][1].close()


def test_exit_statuses_are_described() -> None:
    assert describe_exit(0) == "exited with status 0"
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-9) == "killed by signal SIGKILL"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_app_run_with_workers_from_a_script(tmp_path) -> None:
    script = tmp_path / "script_app.py"
    script.write_text(
        "import os\n"
        "from corkweb import App\n"
        "app = App(templates=None)\n"
        "app.get('/pid')(lambda res, req: res.end(str(os.getpid())))\n"
        "app.listen(0, lambda c: print('listening', c['port'], flush=True))\n"
        "app.run(workers=2)\n"
    )
    import subprocess

    from cli_process import cli_env

    proc = subprocess.Popen([sys.executable, str(script)], env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once, by the supervisor, when all are ready
        assert line.startswith("listening "), line
        port = int(line.split()[1])
        r = httpx.get(f"http://127.0.0.1:{port}/pid", timeout=5)
        assert r.status_code == 200 and r.text != str(proc.pid)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "listening" not in out  # the workers do not call the listen handler again
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@linux_only
def test_a_second_instance_on_the_same_port_is_refused() -> None:
    """SO_REUSEPORT would let it join the first one's port silently; the probe refuses it."""
    first = bind_sockets([{"host": "127.0.0.1", "port": 0}], 2)
    try:
        port = first[0][0].getsockname()[1]
        with pytest.raises(OSError, match="Address already in use"):
            bind_sockets([{"host": "127.0.0.1", "port": port}], 2)
    finally:
        for slot in first:
            slot[0].close()


def _get(port: int, path: str, timeout: float = 20) -> bytes:
    """The raw answer to one request on a new connection (b"" if closed unanswered)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode())
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except ConnectionResetError:
            return data
    return data


def _get_pid(port: int) -> str:
    data = _get(port, "/pid")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data
    return body.decode()


@linux_only
def test_a_hung_worker_is_killed_with_its_stack_logged_and_replaced() -> None:
    """A handler blocks one worker's loop: after --worker-timeout the supervisor logs where it
    is stuck, kills it and starts a new one; the connections the kernel queued on its socket
    meanwhile are answered by the replacement, not lost."""
    from concurrent.futures import ThreadPoolExecutor

    with CLIProcess("run", "hang_app:app", "--port", "0", "--workers", "2",
                    "--worker-timeout", "1.5") as cli, ThreadPoolExecutor(12) as pool:
        cli.ready()
        mark = cli.mark()
        blocker = pool.submit(_get, cli.port, "/block")
        hung = int(cli.wait_for(r"blocking (\d+)").group(1))
        # New connections while it hangs: about half land on the hung worker's socket.
        queued = [pool.submit(_get_pid, cli.port) for _ in range(10)]
        m = cli.wait_for(rf"worker (\d) \(pid {hung}\) sent no heartbeat for [\d.]+s", after=mark)
        cli.wait_for(r"in stuck_in_a_blocking_call", after=mark)  # its stack, from faulthandler
        cli.wait_for(rf"worker {m.group(1)} \(pid {hung}\) killed by signal SIGKILL; "
                     r"starting a new one", after=mark)
        new = cli.wait_for(rf"worker {m.group(1)} ready \(pid (\d+)\)", after=mark).group(1)
        answered = {f.result() for f in queued}  # none lost, none stuck
        assert str(hung) not in answered
        assert blocker.result() == b""  # the request that hung the worker died with it
        assert new in pids(cli.port, 30)
        assert cli.stop() == 0, cli.output


def test_worker_timeout_setting() -> None:
    from corkweb.config import ConfigError, Settings

    assert Settings.load({}, {}).worker_timeout is None  # 30 s, off with --reload
    assert Settings.load({}, {"CORKWEB_WORKER_TIMEOUT": "0"}).worker_timeout == 0.0
    assert Settings.load({"worker_timeout": 5.0}, {"CORKWEB_WORKER_TIMEOUT": "9"}
                         ).worker_timeout == 5.0
    with pytest.raises(ConfigError, match="--worker-timeout"):
        Settings.load({"worker_timeout": -1.0}, {})
