"""Middleware: ``mw(res, req, data) -> data``, composed once per route when the app starts.

A middleware receives what the previous one returned (the first gets ``None``) and returns
the data for the next. A falsy return stops the chain: that middleware has answered (e.g.
``res.write_status(401).end("login first")``). The route handler is called as
``handler(res, req)``, or ``handler(res, req, data)`` if it takes a third parameter.

Sync and async middleware mix freely. A chain that is sync all the way runs as a plain loop;
as soon as one part is async the chain becomes one coroutine, and every step of it runs inside
a cork scope (DESIGN.md §1 rule 2), so a header added by a middleware and the body written by
the handler still leave in one write.

The package also holds the middleware batteries, one module each (``cors``, ``compression``,
``sessions``, ...). ``corkweb.middleware`` as an attribute of the ``corkweb`` package is the
:func:`middleware` composer (socketify's name), so reach the modules with ``from
corkweb.middleware.cors import CORS``, not ``import corkweb.middleware.cors``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["middleware", "compose", "is_async", "chain_is_async", "takes_data"]

Middleware = Callable[[Any, Any, Any], Any]


def is_async(fn: Callable[..., Any]) -> bool:
    """True for ``async def`` functions and objects whose ``__call__`` is one."""
    if inspect.iscoroutinefunction(fn):
        return True
    # a callable object whose __call__ is a coroutine function
    return inspect.iscoroutinefunction(type(fn).__dict__.get("__call__"))


def chain_is_async(mws: Sequence[Callable[..., Any]], handler: Callable[..., Any]) -> bool:
    """Whether ``compose(mws, handler)`` returns a coroutine: true as soon as one part is
    async (an async middleware makes the whole chain a coroutine, whatever the handler)."""
    return is_async(handler) or any(map(is_async, mws))


def takes_data(fn: Callable[..., Any]) -> bool:
    """Whether a handler accepts the middleware data as a third positional argument."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    positional = 0
    for p in sig.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            return True
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= 3


def compose(mws: Sequence[Middleware], handler: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """One callable ``(res, req)`` running ``mws`` then ``handler``; chosen once, at start-up.

    With middleware, the chain also takes the data to start from as an optional third
    argument (``middleware(...)`` used as the handler of a group continues from the group's).
    """
    if not mws and getattr(handler, "starts_with_data", False):
        return handler  # middleware(...)'s chain: its data argument defaults to None
    with_data = takes_data(handler)
    if not mws:
        if with_data:
            return lambda res, req: handler(res, req, None)
        return handler
    mws = tuple(mws)
    if not chain_is_async(mws, handler):

        def sync_chain(res: Any, req: Any, data: Any = None) -> Any:
            for mw in mws:
                data = mw(res, req, data)
                if not data:
                    _stopped(res, mw)
                    return None
            if with_data:
                return handler(res, req, data)
            return handler(res, req)

        return sync_chain

    async def async_chain(res: Any, req: Any, data: Any = None) -> Any:
        for mw in mws:
            data = mw(res, req, data)
            if inspect.isawaitable(data):
                data = await data
            if not data:
                _stopped(res, mw)
                return None
        result = handler(res, req, data) if with_data else handler(res, req)
        if inspect.isawaitable(result):
            result = await result
        return result

    return async_chain


def _stopped(res: Any, mw: Callable[..., Any]) -> None:
    """A middleware stopped the chain: if it did not answer either, say which one it was, for
    the 500 error (only on this path: a chain that runs through pays nothing)."""
    if not res.has_responded():
        res.stopped_by = describe(mw)


def describe(fn: Callable[..., Any]) -> str:
    """``name (file.py:12)`` for a function, its class name for another callable."""
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    name = name.rpartition("<locals>.")[2]  # where it is defined is in the file:line part
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is None:
        return name
    return f"{name} ({os.path.basename(code.co_filename)}:{code.co_firstlineno})"


def middleware(*functions: Callable[..., Any]) -> Callable[..., Any]:
    """socketify's composer: ``app.get("/", middleware(auth, load_user, handler))``.

    The last function is the handler; the others are middleware. The result takes an optional
    third argument, the data to start the chain with: used as the handler of a group whose
    middleware returned data (``app.router("/api", auth).get("/x", middleware(more, h))``),
    the chain continues from that data, as in socketify.
    """
    if not functions:
        raise TypeError("middleware() needs at least a handler")
    *mws, handler = functions
    if not mws:
        if not takes_data(handler):
            return handler
        def chain(res: Any, req: Any, data: Any = None) -> Any:
            return handler(res, req, data)
    else:
        chain = compose(mws, handler)  # type: ignore[assignment]
    chain.starts_with_data = True  # type: ignore[attr-defined]
    return chain
