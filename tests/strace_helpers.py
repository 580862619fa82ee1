"""Tier 3 helpers: a real server process under strace, its send syscalls counted per
accepted connection (DESIGN.md §1). The syscall tests of the core, ASGI hosting, PostgreSQL
and templates all drive their servers through these."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import parse_responses
from scaling_helpers import free_port

__all__ = ["exchange", "free_port", "needs_strace", "sends_per_connection", "server_env",
           "under_strace", "wait_listening"]

needs_strace = pytest.mark.skipif(shutil.which("strace") is None, reason="strace not installed")

SEND = re.compile(r"^(\d+)\s+(write|writev|sendto|sendmsg|send)\((\d+),")
ACCEPT = re.compile(r"^(\d+)\s+accept4?\(.*\)\s+=\s+(\d+)")


def exchange(port: int, payload: bytes, responses: int) -> list:
    """Send ``payload`` on a new connection and read until ``responses`` answers arrived."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        data = b""
        while len(parse_responses(data)) < responses:
            chunk = s.recv(65536)
            assert chunk, data
            data += chunk
    return parse_responses(data)


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


def server_env(*first: str | Path) -> dict[str, str]:
    """This process's environment with its import path (``first`` in front) for the server."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, first), *sys.path])}


@contextmanager
def under_strace(command: Sequence[str], trace: Path, **popen: Any) -> Iterator[subprocess.Popen]:
    """Run ``command`` under strace (network and write calls, to ``trace``); on leaving, stop
    the traced process (strace's child) with SIGTERM so strace writes out and exits itself.
    ``popen`` goes to Popen; stdout and stderr default to /dev/null, env to ``server_env()``."""
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    popen.setdefault("env", server_env())
    proc = subprocess.Popen(
        ["strace", "-f", "-e", "trace=network,write,writev", "-o", str(trace), *command], **popen,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            for child in children:
                os.kill(int(child), signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()


def wait_listening(proc: subprocess.Popen, port: int, errors: Path | None = None) -> None:
    """Connect until the traced server accepts on ``port`` (that probe is its first accepted
    connection); fail with its stderr (from ``errors``) if it exits first."""
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None, (
                errors.read_text() if errors is not None else "server under strace exited")
            assert time.monotonic() < deadline, "server under strace did not start"
            time.sleep(0.05)
