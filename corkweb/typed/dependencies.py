"""Dependencies: the providers a route needs, in the order they run, and their clean-up.

At freeze, a route's dependency tree (the handler's ``Depends`` parameters, theirs, and the
group's ``dependencies=[...]``) is flattened into a list of :class:`Step`, each provider before
the ones that use it. A provider used in several places with ``use_cache=True`` (the default)
is one step: it runs once per request and every user gets the same value.

Generator providers (sync or async) run up to their ``yield``; the rest runs after the answer
has been written — scheduled with ``loop.call_soon`` from the handler's last step, so it runs
in the next loop iteration, after the corked write of that step left. If the handler raised
(or the client went away and reading the body raised), the exception is thrown into the
generator at its ``yield``, so ``try/except/finally`` around the ``yield`` sees it; the answer
is already decided by then. Clean-ups run in the reverse order of set-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Generator
from typing import Any

from .plan import DEP, Plan

__all__ = ["Step", "flatten", "schedule_teardown"]

log = logging.getLogger("corkweb.error")

# Clean-up tasks of async generator providers: asyncio keeps only weak references to tasks.
_TASKS: set[asyncio.Task[None]] = set()


class Step:
    """One call of a request: a provider, or the handler (the last step)."""

    __slots__ = ("plan", "args")

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        # (parameter name, what, step index of a dependency's value)
        self.args: list[tuple[str, str, int]] = []


def flatten(handler: Plan, extra: list[Plan]) -> list[Step]:
    """The steps of a route: ``extra`` providers (the group's), then the handler's tree."""
    steps: list[Step] = []
    index: dict[int, int] = {}  # id(plan) -> step index, for cached providers

    def visit(plan: Plan, stack: tuple[int, ...]) -> int:
        if id(plan) in stack:
            raise TypeError(f"{plan.where}: dependency cycle")
        found = index.get(id(plan))
        if found is not None:
            return found
        step = Step(plan)
        for inj in plan.injections:
            if inj.what == DEP:
                assert inj.plan is not None and inj.depends is not None
                if inj.depends.use_cache:
                    at = visit(inj.plan, (*stack, id(plan)))
                else:
                    at = visit(_copy(inj.plan), (*stack, id(plan)))
                step.args.append((inj.name, DEP, at))
            else:
                step.args.append((inj.name, inj.what, -1))
        steps.append(step)
        index[id(plan)] = len(steps) - 1
        return len(steps) - 1

    for plan in extra:
        visit(plan, ())
    visit(handler, ())
    return steps


def _copy(plan: Plan) -> Plan:
    """The same plan as a separate step (``use_cache=False``)."""
    clone = Plan.__new__(Plan)
    clone.__dict__.update(plan.__dict__)
    return clone


Teardown = tuple[Generator[Any, None, None] | AsyncGenerator[Any, None], bool]


def schedule_teardown(stack: list[Teardown], exc: BaseException | None) -> None:
    """Run the code after the providers' ``yield`` once the current answer has left."""
    loop = asyncio.get_running_loop()
    if any(is_async for _, is_async in stack):
        task = loop.create_task(_teardown_async(stack, exc))
        _TASKS.add(task)
        task.add_done_callback(_TASKS.discard)
    else:
        loop.call_soon(_teardown_sync, stack, exc)


def _close_sync(gen: Any, exc: BaseException | None) -> None:
    try:
        if exc is None:
            next(gen)
        else:
            gen.throw(exc)
    except StopIteration:
        return
    except BaseException as error:
        if error is not exc:
            log.error("clean-up of dependency %s raised", _gen_name(gen), exc_info=error)
        return
    log.error("dependency %s yielded more than once; it must yield exactly one value",
              _gen_name(gen))
    gen.close()


async def _close_async(agen: Any, exc: BaseException | None) -> None:
    try:
        if exc is None:
            await agen.__anext__()
        else:
            await agen.athrow(exc)
    except StopAsyncIteration:
        return
    except BaseException as error:
        if error is not exc:
            log.error("clean-up of dependency %s raised", _gen_name(agen), exc_info=error)
        return
    log.error("dependency %s yielded more than once; it must yield exactly one value",
              _gen_name(agen))
    await agen.aclose()


def _teardown_sync(stack: list[Teardown], exc: BaseException | None) -> None:
    for gen, _ in reversed(stack):
        _close_sync(gen, exc)


async def _teardown_async(stack: list[Teardown], exc: BaseException | None) -> None:
    for gen, is_async in reversed(stack):
        if is_async:
            await _close_async(gen, exc)
        else:
            _close_sync(gen, exc)


def _gen_name(gen: Any) -> str:
    return str(getattr(gen, "__qualname__", None) or getattr(gen, "__name__", repr(gen)))
