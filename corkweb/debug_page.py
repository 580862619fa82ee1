"""What debug mode shows for an unhandled exception: the developer's code first.

:func:`build_report` turns an exception and the request into a :class:`DebugReport`: the
headline (``ZeroDivisionError: division by zero``), the frames of the developer's code (the
innermost first, each with its source lines around the failing one), the number of corkweb and
library frames (shown folded under the full traceback) and the request's details. The HTML
debug page (``corkweb/templates/debug.html``), the JSON body and the plain-text body are all
drawn from it. Built only in debug mode, after an error: nothing here runs per request.
"""

from __future__ import annotations

import linecache
import os
import sysconfig
import traceback
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DebugReport", "DebugFrame", "build_report"]

_CORKWEB_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_LIBRARY_DIRS = tuple(
    os.path.abspath(path) + os.sep
    for path in {sysconfig.get_paths().get(name) for name in
                 ("stdlib", "platstdlib", "purelib", "platlib")} if path)
#: Lines of source shown before and after the failing line of each of the developer's frames.
CONTEXT_LINES = 3


@dataclass
class DebugFrame:
    """One frame of the developer's code."""

    filename: str
    lineno: int
    function: str
    #: ``(line number, text, is the failing line)`` around ``lineno``.
    source: list[tuple[int, str, bool]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        line = next((text for _, text, failing in self.source if failing), "")
        return {"file": self.filename, "line": self.lineno, "function": self.function,
                "code": line.strip()}


@dataclass
class DebugReport:
    """An exception and its request, as debug mode shows them."""

    headline: str
    exception_type: str
    message: str
    user_frames: list[DebugFrame]
    folded_frames: int
    traceback: str
    request: list[tuple[str, str]]
    headers: list[tuple[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "exception": {"type": self.exception_type, "message": self.message},
            "frames": [frame.as_dict() for frame in self.user_frames],
            "request": dict(self.request),
            "traceback": self.traceback,
        }

    def as_text(self) -> str:
        """The plain-text body after its status line (which carries the headline)."""
        lines = []
        for frame in self.user_frames:
            lines.append(f"  {frame.filename}:{frame.lineno} in {frame.function}")
            lines += [f"  {'>' if failing else ' '}{n:5} {text}"
                      for n, text, failing in frame.source]
        lines += ["", *(f"{name}: {value}" for name, value in self.request), "",
                  self.traceback]
        return "\n".join(lines)


def is_user_file(filename: str) -> bool:
    """Not corkweb, not the standard library, not an installed package, not ``<frozen>``."""
    if filename.startswith("<"):
        return False
    path = os.path.abspath(filename)
    return not path.startswith(_CORKWEB_DIR) and not path.startswith(_LIBRARY_DIRS)


def build_report(exc: BaseException, res: Any, req: Any) -> DebugReport:
    """The report of ``exc``, raised while answering ``req`` with ``res``."""
    summary = traceback.extract_tb(exc.__traceback__)
    user = [DebugFrame(f.filename, f.lineno or 0, f.name, _source(f.filename, f.lineno or 0))
            for f in reversed(summary) if is_user_file(f.filename)]
    kind = type(exc).__qualname__
    module = type(exc).__module__
    if module not in ("builtins", "__main__"):
        kind = f"{module}.{kind}"
    message = str(exc)
    return DebugReport(
        headline=f"{kind}: {message}" if message else kind,
        exception_type=kind,
        message=message,
        user_frames=user,
        folded_frames=len(summary) - len(user),
        traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
        request=_request_details(res, req),
        headers=sorted(req.get_headers().items()),
    )


def _source(filename: str, lineno: int) -> list[tuple[int, str, bool]]:
    first = max(1, lineno - CONTEXT_LINES)
    lines = []
    for n in range(first, lineno + CONTEXT_LINES + 1):
        text = linecache.getline(filename, n)
        if not text and n > lineno:
            break
        lines.append((n, text.rstrip("\n"), n == lineno))
    return lines


def _request_details(res: Any, req: Any) -> list[tuple[str, str]]:
    details = [("method", req.get_method()), ("url", req.get_full_url())]
    route = req.route
    if route is not None:
        details.append(("route", route))
    params = req.params
    if params:
        details.append(("parameters", ", ".join(f"{k}={v!r}" for k, v in params.items())))
    client = res.get_remote_address()
    if client:
        details.append(("client", str(client)))
    return details
