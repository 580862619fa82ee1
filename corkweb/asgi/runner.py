"""Running hosted app calls: the first step inside the read, the rest on a pooled task.

An ASGI call usually runs to its end without suspending (the app answers from memory), so a
Task per request — what uvicorn creates — is mostly overhead: on Python 3.11 it is a third of a
raw ASGI request here, plus a loop iteration between the read and the answer. Yet the app must
see a current task from its first line on (anyio, sniffio, ``asyncio.timeout`` look for it).

So a :class:`Runner` keeps idle *worker* tasks, each parked on a future. A call borrows one:
its first step runs at once, inside the read's cork scope, with the worker entered as the
current task (as Python 3.12's eager tasks do) and in a context of its own (a copy of the
context the app was hosted from, as a new task gets a copy: context variables never leak
from one request into the next). If the app finishes
in that step — the common case — nothing is scheduled at all and the answer leaves in the
read's write, pipelined neighbours included. If it suspends, the worker is woken with the
call and drives it on as its own task, so whatever the app tied to the current task in its
first step (cancel scopes, timeouts) stays valid. When the call ends, the worker is idle again.

A call dispatched while another task is running (the next pipelined request, answered from the
end of the previous one) is handed to a worker from its start.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import sys
import types
from collections.abc import Generator
from typing import Any

from .http import DONE

__all__ = ["Runner"]

log = logging.getLogger("corkweb.error")

_enter_task = asyncio.tasks._enter_task
_leave_task = asyncio.tasks._leave_task
#: Python 3.10 has no Task.uncancel and no create_task(context=): there each call is a task.
POOLED = sys.version_info >= (3, 11)
# PERF: on Python 3.11 asyncio.current_task is Python code around a dict of the C module;
# that dict's get is the same answer without a frame (~150 instructions per call). Later
# versions have it in C.
_current_task: Any = asyncio.current_task
if not inspect.isbuiltin(_current_task) and isinstance(
        getattr(asyncio.tasks, "_current_tasks", None), dict):
    _current_task = asyncio.tasks._current_tasks.get  # type: ignore[attr-defined]

#: Idle workers kept beyond this many are let go (their tasks end).
MAX_IDLE = 256

_START: Any = object()  # _Call.first of a call whose first step has not run
_RUNNING: Any = object()  # _Call.first once the task drives the call
_FINISHED: Any = object()  # what a stepper yields when its call has returned


@types.coroutine
def _stepper() -> Generator[Any, Any, None]:
    """Runs the calls sent to it, one after the other: ``send(coro)`` runs ``coro`` until it
    returns — then it yields ``_FINISHED`` and waits for the next call — or until it waits on
    something, which it yields (later ``send``/``throw`` reach ``coro``). A call that raises
    ends the stepper with its exception.

    PERF: the driver learns that a call returned from the value yielded, without the
    StopIteration that ``coro.send`` raises (1.35k instructions per request, callgrind)."""
    coro = yield
    while True:
        yield from coro
        coro = yield _FINISHED


class _Call:
    """One app call as the worker awaits it: steps run in the call's own context."""

    __slots__ = ("coro", "context", "first", "cycle", "worker")

    def __init__(self, coro: Any, context: contextvars.Context, first: Any, cycle: Any,
                 worker: _Worker) -> None:
        self.coro = coro
        self.context = context
        self.first = first  # what the inline first step yielded, or _START
        self.cycle = cycle
        self.worker = worker  # whose stepper runs the call

    def __await__(self) -> Generator[Any, None, None]:
        return self

    def __iter__(self) -> _Call:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        first = self.first
        if first is not _RUNNING:
            self.first = _RUNNING
            if first is _START:
                value = self.coro  # the stepper takes the call
            elif first is not None:
                return first  # the future the inline step waits on: the task takes it over
            # A bare yield (asyncio.sleep(0)): the hand-over was the turn of the loop it asked.
        return self._step(self.worker.step, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        exc = typ if val is None else val
        if self.first is _START:
            # Cancelled before its first step: a coroutine never started would only raise
            # the exception at its first line; it ends without running.
            self.first = _RUNNING
            self.coro.close()
            self.cycle.failed(exc)
            raise StopIteration from None
        self.first = _RUNNING
        return self._step(self.worker.throw, exc)

    def _step(self, step: Any, value: Any) -> Any:
        try:
            out = self.context.run(step, value)
        except BaseException as exc:
            self.worker.renew()  # the call's exception ended the stepper
            self.cycle.failed(exc)
            raise StopIteration from None
        if out is _FINISHED:
            self.cycle.finished()
            raise StopIteration
        return out

    def close(self) -> None:
        self.worker.close_call()


class _Worker:
    """A task that runs the calls it is given, one at a time, through its stepper."""

    __slots__ = ("runner", "task", "waiter", "stepper", "step", "throw")

    def __init__(self, runner: Runner, loop: asyncio.AbstractEventLoop) -> None:
        self.runner = runner
        self.renew()
        self.waiter: asyncio.Future[_Call] = loop.create_future()
        # Its own empty context: calls run in theirs (see _Call), never in the worker's.
        self.task = loop.create_task(  # type: ignore[call-arg]
            self._main(), context=contextvars.Context())

    def renew(self) -> None:
        """A new stepper (the last one ended with its call's exception)."""
        stepper = _stepper()
        stepper.send(None)
        self.stepper = stepper
        self.step = stepper.send
        self.throw = stepper.throw

    def close_call(self) -> None:
        """Close the call in progress (and with it the stepper)."""
        self.stepper.close()
        self.renew()

    async def _main(self) -> None:
        runner = self.runner
        task = self.task
        loop = task.get_loop()
        while True:
            # Cancelled while idle (the loop closing, or a cancel meant for the call that just
            # ended): the worker ends; run() never picks a worker whose task is done.
            call = await self.waiter
            self.waiter = loop.create_future()
            try:
                await call
            finally:
                runner.calls.done()
            if task.cancelling() or not runner.give_back(self):  # type: ignore[attr-defined]
                # A cancel reached the call (which ended by it): the task was asked to stop.
                runner.workers.discard(self)
                return


class Runner:
    """Runs the app calls of one hosted app (see the module docstring)."""

    def __init__(self, calls: Any) -> None:
        self.calls = calls
        #: What every call's context starts as (a copy each): the context the app was hosted
        #: from, never what an earlier call set (a call may be started from inside another).
        self.base = contextvars.copy_context()
        self.idle: list[_Worker] = []
        self.workers: set[_Worker] = set()  # every live worker, for close()
        self.closing = False

    def run(self, loop: asyncio.AbstractEventLoop, coro: Any, cycle: Any) -> None:
        """Start ``coro`` (the app's call for ``cycle``); returns once it finished or was
        handed to a worker."""
        if not POOLED:
            self.calls.active += 1
            cycle.continues()
            self.base.run(loop.create_task, self._as_task(coro, cycle))
            return
        context = self.base.copy()
        idle = self.idle
        worker = idle.pop() if idle else self._new_worker(loop)
        task = worker.task
        while task.done():  # cancelled while idle (see _Worker._main)
            worker = idle.pop() if idle else self._new_worker(loop)
            task = worker.task
        if _current_task(loop) is not None:
            # Inside another task's step: that task may be the one this call follows, still
            # on the stack; the worker starts the call in its own step.
            self._hand_over(worker, _Call(coro, context, _START, cycle, worker))
            return
        _enter_task(loop, task)
        try:
            out = context.run(worker.step, coro)
        except BaseException as exc:
            _leave_task(loop, task)
            worker.renew()  # the call's exception ended the stepper
            idle.append(worker)
            cycle.failed(exc)
            return
        _leave_task(loop, task)
        if out is _FINISHED:
            idle.append(worker)
            # PERF: cycle.finished() only when it has something to do (~400 instructions).
            if cycle.phase is not DONE:
                cycle.finished()
            return
        self._hand_over(worker, _Call(coro, context, out, cycle, worker))

    async def _as_task(self, coro: Any, cycle: Any) -> None:
        try:
            await coro
        except BaseException as exc:
            cycle.failed(exc)
        else:
            cycle.finished()
        finally:
            self.calls.done()

    def _new_worker(self, loop: asyncio.AbstractEventLoop) -> _Worker:
        worker = _Worker(self, loop)
        self.workers.add(worker)
        return worker

    def _hand_over(self, worker: _Worker, call: _Call) -> None:
        # PERF: only calls handed to a worker are counted in flight (the worker's task counts
        # them out): one that ends in its inline step is never seen unfinished by a shutdown.
        self.calls.active += 1
        call.cycle.continues()
        worker.waiter.set_result(call)

    def give_back(self, worker: _Worker) -> bool:
        """A worker finished its call: idle again, unless enough are idle already."""
        if self.closing or len(self.idle) >= MAX_IDLE:
            self.workers.discard(worker)
            return False
        self.idle.append(worker)
        return True

    async def close(self) -> None:
        """End the idle workers (at shutdown, once no call is running)."""
        self.closing = True
        tasks = [w.task for w in self.workers]
        self.idle.clear()
        self.workers.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.closing = False  # the app may be served again
