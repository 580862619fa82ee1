"""A throw-away PostgreSQL server for tests: ``initdb`` in a temporary folder, a free port.

Used through :mod:`corkweb.testing`::

    from corkweb.testing import PostgresServer

    @pytest.fixture(scope="session")
    def postgres():
        with PostgresServer() as server:     # skip the tests with pytest.skip on
            yield server                     # PostgresNotInstalled if you prefer

    def test_something(postgres):
        dsn = postgres.create_database()     # a new empty database per test

The server binaries are found with ``pg_config --bindir``, ``initdb`` on ``PATH`` or
Debian's ``/usr/lib/postgresql/<version>/bin`` (the ``postgresql`` package). PostgreSQL
refuses to run as root, so under root every server command runs as the ``postgres`` system
user (or ``nobody``) through ``runuser``; the folder is then made outside pytest's private
temporary folders, which that user could not enter. The settings trade durability for speed
(``fsync=off``): never point it at data you want to keep.

``stop()`` and ``start()`` take the server away and bring it back on the same port and data,
to test what an app does while its database is gone.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

__all__ = ["PostgresServer", "PostgresNotInstalled", "find_postgres_bindir"]


class PostgresNotInstalled(RuntimeError):
    """No PostgreSQL server binaries (``initdb``, ``pg_ctl``) were found."""


def find_postgres_bindir() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is absent."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if done.returncode == 0:
            candidates.append(Path(done.stdout.strip()))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)

    def version(path: str) -> int:
        name = Path(path).parent.parent.name
        return int(name) if name.isdigit() else 0

    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True)
    candidates += [Path(p).parent for p in debian]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    """The unprivileged user to run the server as, or None when we are not root."""
    if os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists "
                       "to run PostgreSQL as (it refuses to run as root)")


class PostgresServer:
    """One initdb'd cluster on 127.0.0.1:<free port>, superuser ``postgres``, no password.

    ``with PostgresServer() as server`` starts it and removes it (data included) at the end;
    :meth:`create_database` returns the DSN of a new empty database.
    """

    def __init__(self, bindir: str | os.PathLike[str] | None = None) -> None:
        found = Path(bindir) if bindir is not None else find_postgres_bindir()
        if found is None:
            raise PostgresNotInstalled(
                "PostgreSQL server binaries (initdb, pg_ctl) not found: install them "
                "(apt-get install postgresql) or put pg_config on PATH")
        self.bindir = found
        self.user = _server_user()
        self.host = "127.0.0.1"
        self.port = _free_port()
        self.running = False
        self.root = Path(tempfile.mkdtemp(prefix="corkweb-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._databases = 0
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o755)
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "-E", "UTF8", "--locale=C", "--no-sync")
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.destroy()

    def _run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / program), *args]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=self.root)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} {' '.join(args)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}\n{log}")
        return done

    @property
    def version(self) -> str:
        """``postgres (PostgreSQL) 15.x ...``"""
        return self._run("postgres", "--version").stdout.strip()

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

    def start(self) -> None:
        # A disposable server: no durability, small, quick to stop.
        options = (f"-p {self.port} -c listen_addresses={self.host} "
                   f"-c unix_socket_directories={self.root} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100 "
                   "-c shared_buffers=32MB")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "30", "start")
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``fast`` ends every session (clients see their connection end)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")
        self.running = False

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql; returns its unaligned, tuples-only output."""
        done = self._run("psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                         "-h", self.host, "-p", str(self.port), "-U", "postgres",
                         "-d", database, "-c", sql)
        return done.stdout.strip()

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database; returns its DSN."""
        self._databases += 1
        name = f"{prefix}_{self._databases}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def destroy(self) -> None:
        """Stop the server (immediately) and delete its folder."""
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
