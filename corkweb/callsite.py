"""Where the developer called ``app.run()`` from, and what their module does after it.

``app.run()`` blocks until the server stops, so a route registered below the call in the same
module does not exist while the app serves: every request for it is a 404 and nothing says
why. :func:`registrations_after` finds such registrations by reading the caller's source once,
when serving starts (never per request), so ``app.run()`` can say so at once.
"""

from __future__ import annotations

import ast
import os
import sys
from types import FrameType

__all__ = ["user_frame", "describe", "registrations_after"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

#: Methods of App and route groups that take a path first: a call counts when it does
#: (``app.get("/x")``, not ``os.environ.get("X")``).
ROUTING = frozenset({
    "get", "post", "put", "delete", "patch", "options", "head", "connect", "trace", "any",
    "ws", "static", "mount",
})
#: Methods that register something else used while serving.
HOOKS = frozenset({"use", "middleware", "on_error", "on_start", "on_shutdown"})


def user_frame(depth: int = 1) -> FrameType | None:
    """The innermost frame of the caller's stack that is not corkweb's (nor ``<frozen>``)."""
    frame: FrameType | None = sys._getframe(depth)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<") and not os.path.abspath(filename).startswith(
                _PACKAGE_DIR):
            return frame
        frame = frame.f_back
    return None


def describe(frame: FrameType | None) -> str:
    """``app.py:12`` (relative to the current folder when below it), or ``the module``."""
    if frame is None:
        return "the module"
    path = os.path.abspath(frame.f_code.co_filename)
    try:
        shown = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        shown = path
    if shown.startswith(".." + os.sep):
        shown = path
    return f"{shown}:{frame.f_lineno}"


def registrations_after(frame: FrameType | None) -> list[int]:
    """Line numbers of route/middleware/hook registrations that follow the ``app.run()``
    call of ``frame`` at the top level of its module (where they run only after it returns).

    Empty when the call is not made at a module's top level (a ``main()`` function, a guard
    block counts as top level) or the source cannot be read.
    """
    if frame is None or frame.f_code.co_name != "<module>":
        return []
    try:
        with open(frame.f_code.co_filename, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return []  # no source to read (a zip, a REPL): nothing to warn about
    line = frame.f_lineno
    body = _statements(tree.body)
    return [_first_line(node) for node in body if node.lineno > line and _registers(node)]


def _first_line(node: ast.stmt) -> int:
    """Where a reader sees it start: the first decorator of a decorated function."""
    decorators = getattr(node, "decorator_list", None)
    return min([d.lineno for d in decorators] + [node.lineno]) if decorators else node.lineno


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Top-level statements, looking inside ``if``/``try``/``with`` blocks (the
    ``if __name__ == "__main__":`` guard among them)."""
    out: list[ast.stmt] = []
    for node in body:
        out.append(node)
        if isinstance(node, (ast.If, ast.With, ast.Try)):
            for part in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, part, None) or []
                out += _statements([n for n in inner if isinstance(n, ast.stmt)])
                for handler in inner:
                    if isinstance(handler, ast.ExceptHandler):
                        out += _statements(handler.body)
    return out


def _registers(node: ast.stmt) -> bool:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return any(_is_registering_call(d) for d in node.decorator_list)
    if isinstance(node, ast.Expr):
        return _is_registering_call(node.value)
    if isinstance(node, ast.Assign):  # chat = app.ws("/chat")
        return _is_registering_call(node.value)
    return False


def _is_registering_call(node: ast.expr) -> bool:
    call = node if isinstance(node, ast.Call) else None
    func = call.func if call is not None else node
    if not isinstance(func, ast.Attribute):
        return False
    if func.attr in HOOKS:
        return True
    if func.attr == "route":  # app.route("GET", "/x")
        args = call.args[1:2] if call is not None else []
    elif func.attr in ROUTING:
        args = call.args[:1] if call is not None else []
    else:
        return False
    return any(isinstance(a, ast.Constant) and isinstance(a.value, str)
               and a.value.startswith("/") for a in args)
