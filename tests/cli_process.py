"""Helper for the tests that start ``python -m corkweb`` as a real subprocess.

The process's stdout and stderr are read by threads into line lists; tests wait for a line
(the readiness signal, a worker restart, a reload) with :meth:`CLIProcess.wait_for`, never with
a fixed sleep.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"

#: "corkweb listening on http://127.0.0.1:PORT": one process or the supervisor, the same line.
READY = re.compile(r"corkweb listening on https?://\S+:(\d+)")


def cli_env(**extra: str) -> dict[str, str]:
    """The environment for a CLI subprocess: this checkout first on the path, no CORKWEB_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORKWEB_", "_CORKWEB_"))}
    # No empty entry: it would put the subprocess's working folder first on the path, ahead
    # of the standard library (a test app named like a stdlib module would shadow it).
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), str(APPS), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class CLIProcess:
    """``python -m corkweb ARGS`` with its output collected line by line
    (``python SCRIPT ARGS`` with ``script=``, for apps that call ``app.run()``)."""

    def __init__(self, *args: str, cwd: str | os.PathLike[str] | None = None,
                 env: dict[str, str] | None = None,
                 script: str | os.PathLike[str] | None = None) -> None:
        self.args = args
        command = [str(script)] if script is not None else ["-m", "corkweb"]
        self.proc = subprocess.Popen(
            [sys.executable, *command, *args], cwd=cwd or APPS,
            env=env if env is not None else cli_env(), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._threads:
            t.start()
        self.port = 0

    def _pump(self, stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._cond:
                lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.err + self.out)

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float = 20.0,
                 after: int = 0) -> re.Match[str]:
        """The first line (stderr, then stdout) matching ``pattern``; fails on timeout or exit.

        ``after`` skips the first ``after`` stderr lines (see :meth:`mark`).
        """
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.err[after:] + self.out:
                    m = regex.search(line)
                    if m:
                        return m
                exited = self.proc.poll() is not None and not any(
                    t.is_alive() for t in self._threads)
                left = deadline - time.monotonic()
                if exited or left <= 0:
                    raise AssertionError(
                        f"no line matching {regex.pattern!r} "
                        f"({'process exited ' + str(self.proc.returncode) if exited else 'timeout'})"
                        f"; output:\n" + "\n".join(self.err + self.out))
                self._cond.wait(min(left, 0.5))

    def wait_count(self, text: str, count: int, timeout: float = 20.0) -> None:
        """Until ``text`` appeared ``count`` times (stdout and stderr)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            # Occurrences, not lines: two workers printing at once can share a line.
            while sum(line.count(text) for line in self.err + self.out) < count:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"{text!r} not seen {count} times; output:\n"
                                         + "\n".join(self.err + self.out))
                self._cond.wait(min(left, 0.5))

    def mark(self) -> int:
        """How many stderr lines were seen so far (for ``wait_for(after=...)``)."""
        with self._cond:
            return len(self.err)

    def ready(self, timeout: float = 20.0) -> int:
        """Wait for the readiness line; returns (and remembers) the port."""
        m = self.wait_for(READY, timeout)
        self.port = int(m.group(1))
        return self.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait for the exit; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        for t in self._threads:
            t.join(5)
        return code

    def __enter__(self) -> CLIProcess:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for t in self._threads:
            t.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def run_cli(*args: str, cwd: str | os.PathLike[str] | None = None,
            env: dict[str, str] | None = None, timeout: float = 30.0,
            ) -> subprocess.CompletedProcess[str]:
    """Run a CLI command that exits by itself (``--version``, ``routes``, ``new``, errors)."""
    return subprocess.run([sys.executable, "-m", "corkweb", *args], cwd=cwd or APPS,
                          env=env if env is not None else cli_env(), capture_output=True,
                          text=True, timeout=timeout)
