"""The worker's heartbeat to its supervisor, and the stack it leaves if its loop blocks.

See ``workers.py`` ("A hung worker is replaced") for the whole mechanism: the worker's event
loop writes a byte on a pipe every interval; the supervisor kills a worker that stays silent
and logs the stack that ``faulthandler`` wrote into a file just before.
"""

from __future__ import annotations

import asyncio
import faulthandler
import os
from typing import Any

__all__ = ["Heartbeat", "start_heartbeat", "stop_heartbeat", "last_stack"]


class Heartbeat:
    """A worker's sign of life: a byte on a pipe from an event-loop timer.

    A timer of the loop itself, not a thread, so that a blocked loop falls silent. Each beat
    also re-arms ``faulthandler.dump_traceback_later(dump_after)``: if the loop then stays
    blocked, faulthandler's own thread (it needs no GIL) writes every thread's stack to
    ``stack_fd`` shortly before the supervisor's timeout expires.
    """

    def __init__(self, fd: int, interval: float, dump_after: float, stack_fd: int) -> None:
        self.fd = fd
        self.interval = interval
        self.dump_after = dump_after
        self.stack_fd = stack_fd
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        os.set_blocking(fd, False)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._beat()

    def _beat(self) -> None:
        try:
            os.write(self.fd, b".")
        except BlockingIOError:
            pass  # the pipe is full of beats the supervisor has not read yet: alive enough
        except BrokenPipeError:  # the supervisor is gone (we get SIGTERM for that too)
            self.stop()
            return
        faulthandler.dump_traceback_later(self.dump_after, file=self.stack_fd)
        assert self._loop is not None
        self._timer = self._loop.call_later(self.interval, self._beat)

    def stop(self) -> None:
        """Stop beating (the worker is shutting down and may legitimately block)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.fd >= 0:
            faulthandler.cancel_dump_traceback_later()
            os.close(self.fd)
            self.fd = -1


_heartbeat: Heartbeat | None = None


def start_heartbeat(heartbeat: Heartbeat, loop: asyncio.AbstractEventLoop) -> None:
    """In a worker: beat from ``loop`` until :func:`stop_heartbeat`."""
    global _heartbeat
    stop_heartbeat()
    _heartbeat = heartbeat
    heartbeat.start(loop)


def stop_heartbeat() -> None:
    """In a worker that is leaving its loop: stop the heartbeat (no-op elsewhere)."""
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None


def last_stack(stack_file: Any) -> str:
    """The last stack dump faulthandler wrote into ``stack_file``, for the log."""
    if stack_file is None:
        return "(no stack: the heartbeat is off)"
    stack_file.seek(0)
    text = stack_file.read().decode("utf-8", "replace")
    start = text.rfind("Timeout (")
    if start < 0:
        return "(no stack could be had: faulthandler wrote nothing)"
    return "its stack when it stopped answering:\n" + text[start:].rstrip()
