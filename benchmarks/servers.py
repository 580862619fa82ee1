"""The servers under test, and starting one pinned to the server CPU.

Each server is an app module in ``benchmarks/apps`` run as
``python -m benchmarks.apps.NAME_app PORT`` from the repository root.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Server:
    name: str
    label: str
    imports: tuple[str, ...]  # what must import for the server to run at all
    # The workloads it serves (None: all). The floor answers only the fixed replies.
    workloads: tuple[str, ...] | None = None

    @property
    def module(self) -> str:
        return f"benchmarks.apps.{self.name}_app"


SERVERS = {
    s.name: s
    for s in (
        Server("corkweb", "corkweb", ("corkweb",)),
        Server("floor", "floor", ("uvloop", "httptools"),
               ("plaintext", "json", "param", "pipelined", "conn-memory")),
        Server("socketify", "socketify.py", ("socketify",)),
        Server("blacksheep", "BlackSheep on Granian", ("blacksheep", "granian")),
        Server("starlette", "Starlette on uvicorn", ("starlette", "uvicorn", "httptools")),
        Server("sanic", "Sanic", ("sanic",)),
    )
}


def serves(server: Server, workload: str) -> bool:
    """Whether ``server`` takes part in ``workload`` at all."""
    return server.workloads is None or workload in server.workloads


def missing(server: Server) -> str | None:
    """Why ``server`` cannot run here (an import fails), or None.

    Checked in a child process: a native library that fails to load must not take the
    runner down, and the runner should not carry the peers' imports.
    """
    code = "import " + ", ".join(server.imports)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit status {proc.returncode}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def pin(cpu: int | None) -> list[str]:
    """The command prefix that pins to ``cpu`` (nothing if there is no taskset)."""
    if cpu is None or not shutil.which("taskset"):
        return []
    return ["taskset", "-c", str(cpu)]


class ServerFailed(RuntimeError):
    """The server exited or never answered: no workload can run on it."""


class RunningServer:
    """A server process (group) on a fresh port; use as a context manager."""

    def __init__(self, server: Server, *, cpu: int | None, static_dir: Path) -> None:
        self.server = server
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{server.name}-", suffix=".log")
        env = dict(os.environ, BENCH_PORT=str(self.port), BENCH_STATIC_DIR=str(static_dir))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [*pin(cpu), sys.executable, "-m", server.module, str(self.port)],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Return once a request on a new connection gets any HTTP answer; else raise
        :class:`ServerFailed`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerFailed(f"exited with status {self.proc.returncode}: {self.why()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1."):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise ServerFailed(f"not answering after {timeout:.0f} s: {self.why()}")

    def output(self) -> list[str]:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace").strip().splitlines()

    def why(self) -> str:
        """The line of the server's output that best says what went wrong."""
        lines = self.output()
        for ln in lines:
            if ln.startswith(("Fatal Python error", "Segmentation fault")):
                return ln
        for ln in reversed(lines):
            if re.match(r"^[\w.]+(Error|Exception|Exit)\b", ln):
                return ln
        return lines[-1] if lines else "(no output)"

    def stop(self) -> None:
        if self.alive():
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever is left of the group
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
