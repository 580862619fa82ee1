"""A typed route as a classic ``(res, req)`` handler, built once at freeze from its plan.

The server and the middleware chain see an ordinary handler: sync when nothing in the route
can wait (no body to read, no async function in it), else ``async``. Per request it gathers and
converts the inputs of every step (all failures together answer one 422), runs the providers
and the handler, answers with the returned value unless the handler responded itself, and
schedules the dependencies' clean-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..body import is_json_media_type
from ..errors import RequestValidationError, UnsupportedMediaType
from ..response import PENDING
from .dependencies import Step, Teardown, flatten, schedule_teardown
from .plan import DEP, RES, Plan, build_plan
from .returns import make_responder

__all__ = ["TypedRoute", "build_route"]


class TypedRoute:
    """What the app keeps about a typed route: its plan (for OpenAPI) and its handler."""

    def __init__(self, plan: Plan, steps: list[Step], status: int,
                 respond: Callable[[Any, Any], None], handler: Callable[[Any, Any], Any]
                 ) -> None:
        self.plan = plan
        self.steps = steps
        self.status = status
        self.respond = respond
        self.handler = handler

    @property
    def inputs(self) -> list[Plan]:
        """Every plan of the route that reads request inputs (for OpenAPI)."""
        return [step.plan for step in self.steps]


def build_route(fn: Callable[..., Any], where: str, path_params: tuple[str, ...], *,
                status: int, dependencies: list[Any], classic: bool,
                dumps: Callable[[Any], bytes], default_json: bool) -> TypedRoute:
    """Plan ``fn`` (a typed handler, or a classic one behind group ``dependencies``)."""
    plans: dict[Any, Plan] = {}
    if classic:
        plan = Plan(fn, where)
        plan.classic = True
    else:
        plan = build_plan(fn, where, path_params, plans)
    extra = []
    for dep in dependencies:
        provider = getattr(dep, "provider", dep)
        extra.append(plans.get(provider) or build_plan(
            provider, f"dependency {getattr(provider, '__qualname__', provider)}",
            path_params, plans))
    steps = flatten(plan, extra)
    respond = make_responder(plan.return_type, status, dumps, default_json)
    takes_res = classic or any(inj.what == RES for inj in plan.injections)
    handler = _make_handler(steps, respond, takes_res)
    return TypedRoute(plan, steps, status, respond, handler)


def _make_handler(steps: list[Step], respond: Callable[[Any, Any], None], takes_res: bool
                  ) -> Callable[[Any, Any], Any]:
    last = steps[-1]
    plan = last.plan
    needs_body = any(step.plan.body for step in steps)
    is_async = needs_body or any(step.plan.is_async for step in steps)
    inputs = [(i, step.plan) for i, step in enumerate(steps) if step.plan.needs_input]
    count = len(steps)

    def answer(res: Any, result: Any) -> None:
        # A handler that takes ``res`` and returns None answers itself (perhaps later:
        # streaming, on_data); one that cannot reach ``res`` answers with what it returns.
        # Nothing is added to an answer already started (streaming) or ended.
        if res.phase is PENDING and (result is not None or not takes_res):
            respond(res, result)

    if len(steps) == 1 and not plan.classic:
        return _single(plan, last, needs_body, answer)

    def gather(req: Any, body: bytes | None) -> list[dict[str, Any] | None]:
        errors: list[dict[str, Any]] = []
        found: list[dict[str, Any] | None] = [None] * count
        for i, p in inputs:
            kwargs = p.convert_params(req, errors) if p.fields else {}
            if p.body:
                assert body is not None
                kwargs.update(p.decode_body(body, errors))
            found[i] = kwargs
        if errors:
            raise RequestValidationError(errors)
        return found

    def arguments(step: Step, given: dict[str, Any] | None, values: list[Any], res: Any,
                  req: Any) -> dict[str, Any]:
        kwargs = dict(given) if given else {}
        for name, what, at in step.args:
            kwargs[name] = values[at] if what == DEP else (res if what == RES else req)
        return kwargs

    if not is_async:
        def steps_sync(res: Any, req: Any) -> Any:
            found = gather(req, None)
            values: list[Any] = [None] * count
            stack: list[Teardown] = []
            try:
                for i, step in enumerate(steps):
                    p = step.plan
                    if p.classic:
                        values[i] = p.fn(res, req)
                        continue
                    value = p.fn(**arguments(step, found[i], values, res, req))
                    if p.kind == "generator":
                        stack.append((value, False))
                        value = _first(value, p)
                    values[i] = value
                answer(res, values[-1])
            except BaseException as exc:
                if stack:
                    schedule_teardown(stack, exc)
                    stack = []
                raise
            finally:
                if stack:
                    schedule_teardown(stack, None)

        return steps_sync

    async def steps_async(res: Any, req: Any) -> Any:
        body = None
        if needs_body:
            _check_json(req)
            body = await res.read_body()
        found = gather(req, body)
        values: list[Any] = [None] * count
        stack: list[Teardown] = []
        try:
            for i, step in enumerate(steps):
                p = step.plan
                if p.classic:
                    value = p.fn(res, req)
                    if p.kind == "coroutine" or hasattr(value, "__await__"):
                        value = await value
                    values[i] = value
                    continue
                value = p.fn(**arguments(step, found[i], values, res, req))
                kind = p.kind
                if kind == "coroutine":
                    value = await value
                elif kind == "generator":
                    stack.append((value, False))
                    value = _first(value, p)
                elif kind == "asyncgen":
                    stack.append((value, True))
                    try:
                        value = await value.__anext__()
                    except StopAsyncIteration:
                        raise RuntimeError(f"{p.where} did not yield a value") from None
                values[i] = value
            answer(res, values[-1])
        except BaseException as exc:
            if stack:
                schedule_teardown(stack, exc)
                stack = []
            raise
        finally:
            if stack:
                schedule_teardown(stack, None)

    return steps_async


def _single(plan: Plan, step: Step, needs_body: bool,
            answer: Callable[[Any, Any], None]) -> Callable[[Any, Any], Any]:
    """The handler of a route without dependencies (the common typed route): one function
    call, no step loop."""
    fn = plan.fn
    static_args = [(name, what) for name, what, _ in step.args]
    has_fields = bool(plan.fields)

    def inputs(res: Any, req: Any, data: bytes | None) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        kwargs = plan.convert_params(req, errors) if has_fields else {}
        if data is not None:
            kwargs.update(plan.decode_body(data, errors))
        if errors:
            raise RequestValidationError(errors)
        for name, what in static_args:
            kwargs[name] = res if what == RES else req
        return kwargs

    if plan.kind == "coroutine":
        if needs_body:
            async def typed_body_async(res: Any, req: Any) -> None:
                _check_json(req)
                data = await res.read_body()
                answer(res, await fn(**inputs(res, req, data)))

            return typed_body_async

        async def typed_async(res: Any, req: Any) -> None:
            answer(res, await fn(**inputs(res, req, None)))

        return typed_async
    if not needs_body:
        def typed_sync(res: Any, req: Any) -> None:
            answer(res, fn(**inputs(res, req, None)))

        return typed_sync

    def typed_body_sync(res: Any, req: Any) -> None:
        # PERF: a sync handler takes its body through on_data: the connection feeds it
        # within the read that carried it, and the answer leaves in that read's write, with
        # no future, coroutine or task: 112k instructions per request against 138k for the
        # same handler written async (callgrind, benchmarks/typed.py).
        _check_json(req)
        chunks: list[bytes] = []

        def on_body(res: Any, chunk: bytes, is_end: bool) -> None:
            if chunk:
                chunks.append(chunk)
            if is_end:
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                answer(res, fn(**inputs(res, req, data)))

        res.on_data(on_body)

    return typed_body_sync


def _check_json(req: Any) -> None:
    """A body must say it is JSON (415 before reading it otherwise), as ``res.get_json``
    requires: a cross-site form or no-CORS ``fetch`` can post ``text/plain`` without a
    preflight."""
    if req.content_length or req.chunked:
        ctype = req.get_header("content-type")
        if not is_json_media_type(ctype):
            raise UnsupportedMediaType(
                "expected a JSON body (content-type application/json or */*+json), got "
                f"{'no content-type' if ctype is None else repr(ctype)}")


def _first(gen: Any, plan: Plan) -> Any:
    try:
        return next(gen)
    except StopIteration:
        raise RuntimeError(f"{plan.where} did not yield a value") from None
