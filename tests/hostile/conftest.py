"""Fixtures of the hostile-input battery: one shared server, and servers with their own limits."""

from __future__ import annotations

import os
import resource
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from corkweb.testing import TestServer

from .helpers import make_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def hostile_server() -> Iterator[TestServer]:
    """The battery's server (``helpers.make_app`` with ``helpers.LIMITS``)."""
    with TestServer(make_app()) as server:
        yield server


@pytest.fixture
def start_server(serve: Callable[..., TestServer]) -> Callable[..., TestServer]:
    """``start_server(app)``: a server of its own, stopped when the test ends (the suite's
    ``serve`` fixture from tests/conftest.py, under the name this battery reads best with)."""
    return serve


class ServerProcess:
    """``server_app.py`` in a subprocess: its port, and what /proc says about it."""

    def __init__(self, stderr_path: Path, *limits: str, nofile: int | None = None) -> None:
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "wb")  # noqa: SIM115 - closed in stop()

        def limit_descriptors() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("server_app.py")), *limits],
            stdout=subprocess.PIPE, stderr=self._stderr, env=env,
            preexec_fn=limit_descriptors,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else b""
        if not line.startswith(b"PORT "):
            self.stop()
            raise RuntimeError(f"server did not start: {line!r} {self.stderr()}")
        self.port = int(line.split()[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def rss(self) -> int:
        """Resident memory in bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()


@pytest.fixture
def spawn_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``spawn_server("max_connections=10", nofile=64)``: ``server_app.py`` in a subprocess."""
    started: list[ServerProcess] = []

    def spawn(*limits: str, nofile: int | None = None) -> ServerProcess:
        server = ServerProcess(tmp_path / f"stderr-{len(started)}.log", *limits, nofile=nofile)
        started.append(server)
        return server

    yield spawn
    for server in started:
        server.stop()
