"""Background tasks: work that runs after the response has been sent (``res.background``).

    @app.post("/signup")
    async def signup(res, req):
        user = await create_user(await res.get_json())
        res.background(send_welcome_mail, user.email)      # sync or async, any arguments
        res.cork_end({"id": user.id})

The function is called once the response is complete (all of it handed to the connection,
so the client is not kept waiting for it), as an asyncio task of the worker's event loop:

* an ``async def`` function is awaited; a plain function is called on the loop, so it must not
  block — for blocking work pass it through a thread:
  ``res.background(asyncio.to_thread, smtp_send, message)``;
* tasks registered on one response run one after the other, in the order given;
* a failure is logged on ``corkweb.error`` with the method, the route pattern and the request
  id (when the ``RequestID`` middleware runs) — never swallowed, never answered (the client
  already has its response);
* a response whose client went away before it was complete runs none of its tasks (there was
  no "after the response" — the same as when the handler fails);
* a graceful shutdown waits for the running tasks within what is left of the drain timeout
  (``Limits.drain_timeout``), then cancels the rest with a warning that names them.

Cost: nothing for responses that do not use it. With it, one ``on_finish`` hook and one task.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["schedule", "pending", "drain"]

log = logging.getLogger("corkweb.error")

Job = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

# The running tasks of this process. asyncio keeps only weak references to tasks; this set is
# what keeps a background task alive until it finishes, and what the shutdown waits for.
_running: set[asyncio.Task[None]] = set()


class _Batch:
    """The jobs of one response, started when it is complete."""

    __slots__ = ("jobs", "where")

    def __init__(self, where: str) -> None:
        self.jobs: list[Job] = []
        self.where = where

    def start(self, res: Any = None) -> None:
        task = asyncio.get_running_loop().create_task(self._run())
        _running.add(task)
        task.add_done_callback(_running.discard)

    async def _run(self) -> None:
        for fn, args, kwargs in self.jobs:
            try:
                result = fn(*args, **kwargs)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                log.warning("background task %s for %s cancelled by the shutdown",
                            _name(fn), self.where)
                raise
            except Exception:
                log.exception("background task %s for %s failed", _name(fn), self.where)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def schedule(res: Any, req: Any, batch: _Batch | None, fn: Callable[..., Any],
             args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Batch | None:
    """Add ``fn(*args, **kwargs)`` to the jobs of ``res``; returns the batch that
    ``Response.background`` keeps for the next call (``None`` once the response is done)."""
    if not callable(fn):
        raise TypeError(f"res.background() needs a callable, got {fn!r}")
    if batch is not None and res.has_responded():
        batch = None  # that batch has started: this job gets its own
    if batch is None:
        where = f"{req.method} {req.route or req.path}"
        if req.request_id is not None:
            where += f" (request id {req.request_id})"
        batch = _Batch(where)
        batch.jobs.append((fn, args, kwargs))
        if not res.has_responded():
            res.on_finish(batch.start)
            return batch
        if not res.aborted:  # registered after the end: start on the next loop iteration
            asyncio.get_running_loop().call_soon(batch.start)
        return None
    batch.jobs.append((fn, args, kwargs))
    return batch


def pending() -> int:
    """Background tasks still running in this process (in every event loop)."""
    return len(_running)


async def drain(timeout: float) -> None:
    """Wait up to ``timeout`` seconds for the running tasks of this loop, then cancel the
    ones still running (each says so in the log)."""
    loop = asyncio.get_running_loop()
    mine = [t for t in _running if t.get_loop() is loop]
    if not mine:
        return
    done, late = await asyncio.wait(mine, timeout=max(0.0, timeout))
    if late:
        log.warning("shutdown: cancelling %d background task(s) still running after the drain "
                    "timeout", len(late))
        for task in late:
            task.cancel()
        await asyncio.wait(late)
