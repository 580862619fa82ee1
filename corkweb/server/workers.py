"""Worker processes: listening sockets, a supervisor that keeps N workers alive, reload.

The supervisor (the process you started) binds every listening socket itself, then starts each
worker as a fresh interpreter running the same command line (``sys.orig_argv``) with the
socket file descriptors passed down (``pass_fds``) and named in ``_CORKWEB_FDS``. A worker
finds them with :func:`worker_sockets`, serves them, and says it is ready through a pipe
(:func:`notify_ready`). Starting workers by re-running the command, not by ``fork``, gives each
one a clean interpreter (no inherited loop, threads or locks) and lets ``--reload`` load new code.

* **SO_REUSEPORT on Linux**: one listening socket per worker slot, all bound to the same port;
  the kernel spreads new connections evenly over them, unlike a shared accept queue where the
  least busy process wins most of them. Elsewhere (the BSDs and macOS do not balance, Windows
  has no SO_REUSEPORT) or with ``reuse_port=False``, all workers share one socket. UNIX sockets
  are always shared.
* **A dead worker is replaced** on the same socket: the supervisor keeps its copy, so
  connections that arrive meanwhile wait in that socket's queue instead of being refused.
  The exit status is logged. A worker that dies before it was ever ready, at start-up, stops the
  supervisor (exit status 3: the app cannot boot; restarting would only loop); later on, a
  crashing replacement is restarted with a growing delay (1 s doubling to 30 s).
* **Signals**: SIGTERM or SIGINT is forwarded to the workers, which drain (in-flight requests
  finish, keep-alive connections close, ``on_shutdown`` hooks run); the supervisor closes its
  copies of the sockets and waits ``shutdown_timeout`` seconds before killing what is left.
  SIGHUP replaces every worker (new code) the way ``--reload`` does.
* **A hung worker is replaced** too. Each worker's event loop writes a heartbeat byte to the
  supervisor every ``worker_timeout / 4`` seconds; a worker silent for ``worker_timeout``
  seconds (30 by default, 0 turns the check off) has a loop blocked by a CPU loop or a
  blocking call, and the kernel keeps handing its SO_REUSEPORT socket new connections that it
  will never read. The supervisor kills it (SIGKILL: a blocked loop cannot run a graceful
  stop), logs the stack it was stuck in and starts a new one on the same socket. The stack
  comes from ``faulthandler``: the worker re-arms ``dump_traceback_later`` at each heartbeat, so
  a loop that stays blocked dumps its threads into a file the supervisor reads before the kill.
  Connections the hung worker had accepted are lost (reset by the kill); connections still
  queued on its socket are not, since the supervisor holds a copy of the socket: the new
  worker accepts them once it is ready (they wait, up to the backlog, for the boot time).
* **Replacing workers** (reload, SIGHUP) starts the new generation first and stops the old one
  only once every new worker is ready: no refused connection, and an edit that breaks the
  import leaves the old workers serving.

The supervisor sleeps in ``select`` on a signal wake-up pipe and the workers' ready pipes: with
no ``--reload`` it uses no CPU; with it, it wakes every ``interval`` to scan the watched files
(see ``reload.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .heartbeat import Heartbeat, last_stack, start_heartbeat, stop_heartbeat

__all__ = ["Supervisor", "bind_sockets", "worker_sockets", "notify_ready", "reuse_port_balances",
           "worker_command"]

log = logging.getLogger("corkweb.error")

ENV_FDS = "_CORKWEB_FDS"
ENV_READY = "_CORKWEB_READY_FD"
ENV_WORKER = "_CORKWEB_WORKER"
#: ``"interval:dump_after:stack_fd"``: the heartbeat a worker sends on its ready pipe.
ENV_HEARTBEAT = "_CORKWEB_HEARTBEAT"

#: Seconds a worker's loop may stay silent before the supervisor replaces it (gunicorn's).
WORKER_TIMEOUT = 30.0

BOOT_FAILED = 3


def reuse_port_balances() -> bool:
    """True where SO_REUSEPORT spreads connections over the sockets (Linux >= 3.9)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind_sockets(
    listens: Sequence[dict[str, Any]], workers: int, *, reuse_port: bool | None = None,
    backlog: int = 2048,
) -> list[list[socket.socket]]:
    """Listening sockets for each worker slot: ``result[slot]`` has one per ``listens`` entry.

    ``listens`` holds ``{"host": ..., "port": ...}`` or ``{"uds": path}``. With per-worker
    SO_REUSEPORT sockets the first bind picks the port (``port=0``) and the others join it.
    """
    per_worker = (reuse_port_balances() if reuse_port is None else reuse_port) and workers > 1
    if per_worker and not hasattr(socket, "SO_REUSEPORT"):
        raise OSError("SO_REUSEPORT is not available on this system; use --no-reuse-port")
    slots: list[list[socket.socket]] = [[] for _ in range(workers)]
    for spec in listens:
        if spec.get("uds"):
            shared = _bind_unix(spec["uds"], backlog)
            for slot in slots:
                slot.append(shared)
            continue
        host, port = spec.get("host") or "127.0.0.1", int(spec.get("port") or 0)
        if not per_worker:
            shared = _bind_tcp(host, port, backlog, reuse_port=False)
            for slot in slots:
                slot.append(shared)
            continue
        if port:
            # SO_REUSEPORT lets any process of the same user join a port: probe it without
            # the option first, so a second instance fails instead of sharing the traffic.
            _bind_tcp(host, port, 1, reuse_port=False).close()
        first = _bind_tcp(host, port, backlog, reuse_port=True)
        slots[0].append(first)
        port = first.getsockname()[1]
        for slot in slots[1:]:
            slot.append(_bind_tcp(host, port, backlog, reuse_port=True))
    return slots


def _bind_tcp(host: str, port: int, backlog: int, *, reuse_port: bool) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _bind_unix(path: str, backlog: int) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        if not os.path.isfile(path):  # a stale socket left by a previous run
            os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def address_of(sock: socket.socket) -> Any:
    name = sock.getsockname()
    return name[:2] if isinstance(name, tuple) else name


# -- the worker's side --------------------------------------------------------------------------


def worker_sockets() -> list[socket.socket] | None:
    """In a worker: the sockets the supervisor passed down, else ``None``.

    Reads and removes the supervisor's variables, so that processes the app starts do not
    believe they are workers. On Linux the worker also asks to get SIGTERM if the supervisor
    dies, so no worker outlives it.
    """
    fds = os.environ.pop(ENV_FDS, None)
    if fds is None:
        return None
    _die_with_parent()
    return [socket.socket(fileno=int(fd)) for fd in fds.split(",") if fd]


def worker_id() -> str:
    return os.environ.get(ENV_WORKER, "0")


def notify_ready() -> None:
    """In a worker: tell the supervisor that every socket is served (no-op elsewhere).

    Called from the running event loop: when the supervisor asked for a heartbeat, the same
    pipe then carries one byte every interval from this loop (see :class:`Heartbeat`).
    """
    fd = os.environ.pop(ENV_READY, None)
    spec = os.environ.pop(ENV_HEARTBEAT, None)
    if fd is None:
        return
    os.write(int(fd), b"1")
    if spec is None:
        os.close(int(fd))
        return
    interval, dump_after, stack_fd = spec.split(":")
    start_heartbeat(Heartbeat(int(fd), float(interval), float(dump_after), int(stack_fd)),
                    asyncio.get_running_loop())


def ignore_stop_signals() -> None:
    """In a worker that has shut down: a late SIGTERM/SIGINT must not turn a clean exit into
    a death by signal (the supervisor forwards one that the terminal may also have sent).
    Its loop is closed, so its heartbeat stops too."""
    stop_heartbeat()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - no libc prctl
        return
    if os.getppid() == 1:  # pragma: no cover - the supervisor died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


def worker_command() -> list[str]:
    """The command line that started this process, to start workers with."""
    argv = getattr(sys, "orig_argv", None) or [sys.executable, *sys.argv]
    return [sys.executable, *argv[1:]]


# -- the supervisor ---------------------------------------------------------------------------


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


@dataclass
class Worker:
    slot: int
    generation: int
    proc: subprocess.Popen[bytes]
    ready_fd: int
    started: float
    ready: bool = False
    stopping: bool = False
    #: When the supervisor last read a heartbeat (or the ready byte) from the worker.
    last_beat: float = 0.0
    #: Where the worker's faulthandler writes its stacks if its loop stays blocked.
    stack_file: Any = None
    #: Killed for missing its heartbeats.
    hung: bool = False


@dataclass
class Supervisor:
    """Keeps ``workers`` processes serving ``slots`` until SIGTERM/SIGINT.

    ``command`` starts one worker (it must call :func:`worker_sockets` and
    :func:`notify_ready`); ``on_ready(addresses)`` runs once when every first worker is ready;
    ``watcher`` (``reload.py``) is asked ``changed()`` every ``watcher.interval`` seconds.
    A ready worker that sends no heartbeat for ``worker_timeout`` seconds is killed and
    replaced (0 turns this off).
    """

    command: list[str]
    slots: list[list[socket.socket]]
    shutdown_timeout: float = 15.0
    on_ready: Callable[[list[Any]], Any] | None = None
    watcher: Any = None
    worker_timeout: float = WORKER_TIMEOUT
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    workers: list[Worker] = field(default_factory=list)
    _generation: int = 0
    _live: int = 0
    _booted: bool = False
    _stopping: bool = False
    _exit: int = 0
    _restart_at: dict[int, float] = field(default_factory=dict)
    _backoff: dict[int, float] = field(default_factory=dict)
    _pending_signals: list[int] = field(default_factory=list)
    _deadline: float = 0.0
    _next_scan: float = 0.0

    def run(self) -> int:
        """Supervise until told to stop; returns the exit status for the process."""
        self._selector = selectors.DefaultSelector()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self._selector.register(wake_r, selectors.EVENT_READ, None)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in handled}
        try:
            self._spawn_generation()
            self._loop(wake_r)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self._stopping:
                # Stopped by a signal and about to exit: a second SIGTERM (systemd, a terminal,
                # an impatient script) must not turn the clean exit into a death by signal.
                ignore_stop_signals()
            signal.set_wakeup_fd(old_wakeup)
            self._selector.close()
            os.close(wake_r)
            os.close(wake_w)
            self._close_sockets()
        return self._exit

    # -- signals and the loop ----------------------------------------------------------------

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._pending_signals.append(signum)

    def _loop(self, wake_r: int) -> None:
        while True:
            for key, _ in self._selector.select(self._timeout()):
                if key.data is None:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(wake_r, 512):
                            pass  # drain the self-pipe; it only woke select()
                else:
                    self._ready_pipe(key.data)
            signals, self._pending_signals = self._pending_signals, []
            for signum in signals:
                if signum in (signal.SIGTERM, signal.SIGINT):
                    self._begin_shutdown(signum)
                elif signum == signal.SIGHUP and not self._stopping:
                    log.info("received SIGHUP: replacing the workers")
                    self._spawn_generation()
            self._reap()
            if self.worker_timeout > 0 and not self._stopping:
                self._kill_silent()
            if self._stopping:
                if not self.workers:
                    return
                if time.monotonic() >= self._deadline:
                    for w in self.workers:
                        log.error("worker %d (pid %d) still running %.1fs after the shutdown "
                                  "signal: killing it", w.slot, w.proc.pid,
                                  self.shutdown_timeout)
                        with contextlib.suppress(ProcessLookupError):
                            w.proc.kill()
                    self._exit = self._exit or 1
                    self._deadline = float("inf")
                continue
            self._restart_due()
            watcher = self.watcher
            if watcher is not None and time.monotonic() >= self._next_scan:
                self._next_scan = time.monotonic() + watcher.interval
                changed = watcher.changed()
                if changed:
                    log.info("reload: %s changed; starting new workers", ", ".join(changed[:3])
                             + (f" and {len(changed) - 3} more" if len(changed) > 3 else ""))
                    self._spawn_generation()

    def _timeout(self) -> float | None:
        now = time.monotonic()
        times = list(self._restart_at.values())
        if self._stopping:
            times.append(self._deadline)
        elif self.watcher is not None:
            times.append(self._next_scan)
        if self.worker_timeout > 0 and not self._stopping:
            times += [w.last_beat + self.worker_timeout for w in self.workers
                      if w.ready and not w.stopping and not w.hung]
        if not times:
            return None  # nothing to do until a signal or a pipe wakes us: no CPU
        return max(0.0, min(times) - now)

    # -- workers ------------------------------------------------------------------------------

    def _spawn_generation(self) -> None:
        self._generation += 1
        if self.watcher is not None:
            self._next_scan = time.monotonic() + self.watcher.interval
        for slot in range(len(self.slots)):
            self._spawn(slot, self._generation)

    def _spawn(self, slot: int, generation: int) -> None:
        self._restart_at.pop(slot, None)
        sockets = self.slots[slot]
        fds = [s.fileno() for s in sockets]
        ready_r, ready_w = os.pipe()
        env = dict(self.env)
        env[ENV_FDS] = ",".join(map(str, fds))
        env[ENV_READY] = str(ready_w)
        env[ENV_WORKER] = str(slot)
        pass_fds = [*fds, ready_w]
        stack_file = None
        if self.worker_timeout > 0:
            # Beat four times per timeout; have the stack dumped half a beat before the kill.
            interval = self.worker_timeout / 4
            stack_file = tempfile.TemporaryFile()
            pass_fds.append(stack_file.fileno())
            env[ENV_HEARTBEAT] = (f"{interval}:{self.worker_timeout - interval / 2}:"
                                  f"{stack_file.fileno()}")
        try:
            proc = subprocess.Popen(self.command, env=env, pass_fds=pass_fds)
        except BaseException:
            if stack_file is not None:
                stack_file.close()
            raise
        finally:
            os.close(ready_w)
        worker = Worker(slot, generation, proc, ready_r, time.monotonic(),
                        stack_file=stack_file)
        self.workers.append(worker)
        self._selector.register(ready_r, selectors.EVENT_READ, worker)
        log.debug("worker %d starting (pid %d)", slot, proc.pid)

    def _ready_pipe(self, worker: Worker) -> None:
        try:
            data = os.read(worker.ready_fd, 4096)
        except OSError as exc:  # pragma: no cover - a pipe we own cannot fail
            if exc.errno != errno.EAGAIN:
                raise
            return
        if not data:  # the worker closed the pipe: no heartbeat, or it died
            self._selector.unregister(worker.ready_fd)
            os.close(worker.ready_fd)
            worker.ready_fd = -1
            return
        worker.last_beat = time.monotonic()
        if worker.ready:
            return  # a heartbeat
        worker.ready = True
        self._backoff.pop(worker.slot, None)
        log.info("worker %d ready (pid %d)", worker.slot, worker.proc.pid)
        generation = [w for w in self.workers if w.generation == worker.generation]
        if all(w.ready for w in generation) and len(generation) == len(self.slots):
            self._generation_ready(worker.generation)

    def _kill_silent(self) -> None:
        """Kill each ready worker whose loop sent nothing for ``worker_timeout`` seconds;
        ``_reap`` then starts its replacement like for any worker that died."""
        now = time.monotonic()
        for w in self.workers:
            if not w.ready or w.stopping or w.hung or now - w.last_beat < self.worker_timeout:
                continue
            w.hung = True
            with contextlib.suppress(ProcessLookupError):
                w.proc.kill()
            log.error("worker %d (pid %d) sent no heartbeat for %.1fs: its event loop is "
                      "blocked (a CPU loop or a blocking call in a handler?); killing it.\n%s",
                      w.slot, w.proc.pid, now - w.last_beat, last_stack(w.stack_file))

    def _generation_ready(self, generation: int) -> None:
        self._live = generation
        old = [w for w in self.workers if w.generation < generation and not w.stopping]
        for w in old:
            w.stopping = True
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(signal.SIGTERM)
        if old:
            log.info("new workers ready; old workers stopping gracefully")
        if not self._booted:
            self._booted = True
            addresses = [address_of(s) for s in self.slots[0]]
            shown = ", ".join(_url(a) for a in addresses)
            log.info("corkweb: %d worker%s ready on %s (pid %d)", len(self.slots),
                     "s" if len(self.slots) > 1 else "", shown, os.getpid())
            if self.on_ready is not None:
                self.on_ready(addresses)

    def _reap(self) -> None:
        for worker in list(self.workers):
            code = worker.proc.poll()
            if code is None:
                continue
            self.workers.remove(worker)
            if worker.ready_fd >= 0:
                self._selector.unregister(worker.ready_fd)
                os.close(worker.ready_fd)
                worker.ready_fd = -1
            if worker.stack_file is not None:
                worker.stack_file.close()
            if worker.stopping or self._stopping:
                # Killed by the very signal that asked it to stop (a second copy, e.g. from
                # Ctrl-C reaching the whole process group, arriving once its loop was closed).
                if code != 0 and -code not in (signal.SIGTERM, signal.SIGINT):
                    log.error("worker %d (pid %d) %s while stopping", worker.slot,
                              worker.proc.pid, describe_exit(code))
                    self._exit = self._exit or 1
                else:
                    log.debug("worker %d (pid %d) stopped", worker.slot, worker.proc.pid)
                continue
            self._died(worker, code)

    def _died(self, worker: Worker, code: int) -> None:
        what = describe_exit(code)
        if not self._booted:
            log.error("worker %d (pid %d) %s before every worker was ready: the app cannot "
                      "start; stopping", worker.slot, worker.proc.pid, what)
            self._exit = BOOT_FAILED
            self._begin_shutdown(None)
            return
        if worker.generation > self._live:
            # A reload or SIGHUP whose new code does not start: keep the old workers.
            log.error("worker %d (pid %d) %s before it was ready; the previous workers keep "
                      "serving%s", worker.slot, worker.proc.pid, what,
                      " until the next change" if self.watcher is not None else "")
            for w in self.workers:
                if w.generation == worker.generation and not w.stopping:
                    w.stopping = True
                    with contextlib.suppress(ProcessLookupError):
                        w.proc.send_signal(signal.SIGTERM)
            return
        if worker.generation < self._live:
            return  # an old worker that a newer generation already replaced
        delay = self._backoff.get(worker.slot, 0.0) if not worker.ready else 0.0
        log.error("worker %d (pid %d) %s; starting a new one%s", worker.slot, worker.proc.pid,
                  what, f" in {delay:.0f}s" if delay else "")
        self._backoff[worker.slot] = min(30.0, max(1.0, delay * 2))
        self._restart_at[worker.slot] = time.monotonic() + delay

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot, when in list(self._restart_at.items()):
            if when <= now:
                self._spawn(slot, self._live)

    def _begin_shutdown(self, signum: int | None) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._restart_at.clear()
        self._deadline = time.monotonic() + self.shutdown_timeout
        sig = signal.SIGTERM if signum is None else signal.Signals(signum)
        if signum is not None:
            log.info("received %s: stopping %d worker%s gracefully", sig.name,
                     len(self.workers), "s" if len(self.workers) != 1 else "")
        for w in self.workers:
            w.stopping = True
            with contextlib.suppress(ProcessLookupError):
                w.proc.send_signal(sig)
        # The workers stop accepting; once our copies are closed too, new connections are
        # refused instead of waiting in a queue nobody reads.
        self._close_sockets()

    def _close_sockets(self) -> None:
        seen: set[int] = set()
        for slot in self.slots:
            for sock in slot:
                if id(sock) not in seen:
                    seen.add(id(sock))
                    sock.close()


def _url(address: Any) -> str:
    if isinstance(address, tuple):
        host = address[0]
        return f"{'[' + host + ']' if ':' in host else host}:{address[1]}"
    return f"unix:{address}"


def supervise(
    listens: Sequence[dict[str, Any]],
    *,
    workers: int = 1,
    reuse_port: bool | None = None,
    backlog: int = 2048,
    shutdown_timeout: float = 15.0,
    reload: bool = False,
    reload_dirs: Sequence[str] = (),
    reload_patterns: Sequence[str] = (),
    reload_interval: float = 0.5,
    on_ready: Callable[[list[Any]], Any] | None = None,
    command: list[str] | None = None,
    worker_timeout: float | None = None,
) -> int:
    """Bind ``listens``, run ``workers`` copies of this command on them, supervise; returns
    the exit status. ``reload`` watches ``reload_dirs`` (default: the current folder);
    ``worker_timeout`` is how long a worker's loop may stay silent (0: forever; ``None``:
    30 s, or forever with ``reload``, where a developer's breakpoint stops the loop)."""
    if worker_timeout is None:
        worker_timeout = 0.0 if reload else WORKER_TIMEOUT
    if os.name != "posix":  # pragma: no cover - passing sockets to children needs POSIX
        raise OSError(errno.ENOSYS, "--workers > 1 and --reload need a POSIX system "
                      "(Linux, macOS, BSD); on Windows run one process per port")
    watcher = None
    if reload:
        from .reload import DEFAULT_PATTERNS, StatWatcher

        watcher = StatWatcher(reload_dirs or ["."], (*DEFAULT_PATTERNS, *reload_patterns),
                              reload_interval)
        log.info("reload: watching %d files in %s every %.2gs", watcher.watched,
                 ", ".join(watcher.dirs), reload_interval)
    slots = bind_sockets(listens, workers, reuse_port=reuse_port, backlog=backlog)
    supervisor = Supervisor(command or worker_command(), slots,
                            shutdown_timeout=shutdown_timeout, on_ready=on_ready,
                            watcher=watcher, worker_timeout=worker_timeout)
    return supervisor.run()
