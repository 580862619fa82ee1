"""Real ``redis-server`` and ``nginx`` processes for the scaling tests.

Each runs from a temporary directory on a free port of 127.0.0.1 (never the default ports),
is ready when it answers (Redis ``PING``, a TCP connect to nginx) — polled, not slept — and
is stopped when the test ends. A test that needs a binary that is missing is skipped with the
reason (``.ci/run`` installs both from the system packages).
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import pytest

needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="redis-server is not installed (apt-get install "
                                        "redis-server; .ci/run does it)")
needs_redis_package = pytest.mark.skipif(
    importlib.util.find_spec("redis") is None,
    reason="the redis package is not installed (pip install corkweb[redis])")
#: nginx lives in /usr/sbin, which is not on every PATH.
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
needs_nginx = pytest.mark.skipif(NGINX is None,
                                 reason="nginx is not installed (apt-get install nginx; "
                                        ".ci/run does it)")


def free_port() -> int:
    """A port that was free a moment ago (the kernel's pick for port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: object, what: str, timeout: float = 10.0) -> None:
    """Poll ``check()`` (every 20 ms) until it is true; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if check():  # type: ignore[operator]
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def redis_command(port: int, *args: str | bytes, timeout: float = 2.0) -> bytes:
    """Send one command (RESP) and return the raw reply: no client library involved."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"".join(parts))
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


class RedisServer:
    """``redis-server`` on a free port, in its own directory, persistence off."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
             "--logfile", str(self.workdir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._pong, f"redis-server on port {self.port}")
        return self

    def _pong(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError("redis-server exited: "
                                 + (self.workdir / "redis.log").read_text()[-2000:])
        try:
            return redis_command(self.port, "PING") == b"+PONG\r\n"
        except OSError:
            return False

    def numsub(self, channel: str) -> int:
        """Subscribers of ``channel`` (``PUBSUB NUMSUB``): the test's readiness signal."""
        reply = redis_command(self.port, "PUBSUB", "NUMSUB", channel)
        return int(reply.rsplit(b":", 1)[1].strip())

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


class Nginx:
    """``nginx -c CONF`` in the foreground, with its pid file and logs in ``workdir``."""

    def __init__(self, workdir: Path, conf: str, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.conf_path = workdir / "nginx.conf"
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf_path.write_text(conf)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        self.proc = subprocess.Popen(
            [NGINX or "nginx", "-p", str(self.workdir), "-c", str(self.conf_path), "-e",
             str(self.workdir / "error.log"),
             "-g", f"daemon off; pid {self.workdir / 'nginx.pid'};"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(self._listening, f"nginx on port {self.port}")
        return self

    def _listening(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            err = self.proc.stderr.read().decode() if self.proc.stderr else ""
            log = self.workdir / "error.log"
            raise AssertionError(f"nginx exited: {err}"
                                 + (log.read_text()[-2000:] if log.exists() else ""))
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: nginx's fast shutdown
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()

    def __enter__(self) -> Nginx:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
