"""The ASGI lifespan protocol: start-up and shutdown messages, and the state they fill.

``Lifespan.startup`` and ``Lifespan.shutdown`` are corkweb start and shutdown hooks
(``App.on_start``/``App.on_shutdown``), so they run once per worker, before it accepts
connections and after it drained them. The ``state`` dict the app fills during start-up is
shallow-copied into every request's scope (``scope["state"]``), as the spec asks.

An app that raises before it even reads the first lifespan message does not speak lifespan
(``assert scope["type"] == "http"`` is common): in ``auto`` mode that is logged and serving goes
on. An app that reads ``lifespan.startup`` and then fails — ``lifespan.startup.failed`` or an
exception — stops the worker: the error is logged and :class:`LifespanFailure` is raised, which
``corkweb run`` turns into a non-zero exit status.
"""

from __future__ import annotations

import asyncio
import logging
from enum import Enum
from typing import Any

from ..errors import CorkwebError

__all__ = ["Lifespan", "LifespanFailure", "LifespanState"]

log = logging.getLogger("corkweb.error")


class LifespanFailure(CorkwebError):
    """The hosted app reported (or raised) a lifespan start-up or shutdown failure."""


class LifespanState(Enum):
    IDLE = "idle"  # the app has not been called
    STARTING = "starting"  # lifespan.startup sent
    RUNNING = "running"  # lifespan.startup.complete received
    STOPPING = "stopping"  # lifespan.shutdown sent
    STOPPED = "stopped"  # lifespan.shutdown.complete received, or the app returned
    UNSUPPORTED = "unsupported"  # the app refused the lifespan scope
    FAILED = "failed"


S = LifespanState

#: What the app may send in each state, and where it leads (STYLE rule 4).
TRANSITIONS: dict[tuple[LifespanState, str], LifespanState] = {
    (S.STARTING, "lifespan.startup.complete"): S.RUNNING,
    (S.STARTING, "lifespan.startup.failed"): S.FAILED,
    (S.STOPPING, "lifespan.shutdown.complete"): S.STOPPED,
    (S.STOPPING, "lifespan.shutdown.failed"): S.FAILED,
    # Frameworks report a lifespan task that ends early (cancelled with the loop) this way.
    (S.RUNNING, "lifespan.shutdown.failed"): S.FAILED,
    (S.RUNNING, "lifespan.shutdown.complete"): S.STOPPED,
}


class Lifespan:
    """Runs ``app`` with a lifespan scope; ``mode`` is ``"auto"``, ``"on"`` or ``"off"``."""

    def __init__(self, app: Any, mode: str = "auto") -> None:
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"lifespan mode must be auto, on or off, got {mode!r}")
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.phase = S.IDLE
        self._inbox: asyncio.Queue[dict[str, Any]] | None = None
        self._changed: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._read = False  # the app called receive() at least once
        self._message = ""

    async def startup(self) -> None:
        if self.mode == "off":
            return
        self._inbox = asyncio.Queue()
        self._changed = asyncio.Event()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        self.phase = S.STARTING
        self._inbox.put_nowait({"type": "lifespan.startup"})
        self._task = asyncio.get_running_loop().create_task(self._run(scope))
        await self._until_not(S.STARTING)
        if self.phase is S.FAILED:
            log.error("ASGI lifespan start-up failed%s", f": {self._message}"
                      if self._message else "")
            raise LifespanFailure(f"application start-up failed: {self._message or 'see log'}")
        if self.phase is S.UNSUPPORTED:
            if self.mode == "on":
                raise LifespanFailure("the application does not support the lifespan "
                                      "protocol (--lifespan on)")
            log.info("the ASGI application does not speak the lifespan protocol; going on "
                     "without it")

    async def shutdown(self) -> None:
        if self.phase is not S.RUNNING or self._inbox is None:
            return
        self.phase = S.STOPPING
        self._inbox.put_nowait({"type": "lifespan.shutdown"})
        await self._until_not(S.STOPPING)
        if self.phase is S.FAILED:
            log.error("ASGI lifespan shutdown failed%s", f": {self._message}"
                      if self._message else "")
            raise LifespanFailure(f"application shutdown failed: {self._message or 'see log'}")
        if self._task is not None and not self._task.done():
            await self._task

    async def _until_not(self, phase: LifespanState) -> None:
        assert self._changed is not None
        while self.phase is phase:
            self._changed.clear()
            await self._changed.wait()

    def _set(self, phase: LifespanState) -> None:
        self.phase = phase
        assert self._changed is not None
        self._changed.set()

    async def _run(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self._receive, self._send)
        except Exception as exc:
            if not self._read:
                log.debug("lifespan scope refused by the app: %r", exc)
                self._set(S.UNSUPPORTED)
            elif self.phase in (S.STARTING, S.STOPPING):
                log.error("exception in the ASGI lifespan protocol", exc_info=exc)
                self._message = f"{type(exc).__name__}: {exc}"
                self._set(S.FAILED)
            else:
                log.error("the ASGI lifespan task failed while serving", exc_info=exc)
                self._set(S.STOPPED)
            return
        if self.phase in (S.STARTING, S.STOPPING):
            # Returned without answering: starting, it does not do lifespan; stopping, done.
            self._set(S.UNSUPPORTED if self.phase is S.STARTING and not self._read
                      else S.STOPPED if self.phase is S.STOPPING else S.RUNNING)

    async def _receive(self) -> dict[str, Any]:
        self._read = True
        assert self._inbox is not None
        return await self._inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        nxt = TRANSITIONS.get((self.phase, kind))
        if nxt is None:
            raise RuntimeError(f"unexpected ASGI lifespan message {kind!r} in state "
                               f"{self.phase.value}")
        if nxt is S.FAILED:
            self._message = str(message.get("message", ""))
        self._set(nxt)
