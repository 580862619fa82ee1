"""Choosing and running error handlers, and corkweb's default error answers.

``@app.on_error`` registers ``handler(error, res, req)``:

* ``@app.on_error`` alone (or ``app.on_error(fn)``, ``app.set_error_handler(fn)``): every error;
* ``@app.on_error(ValueError)``: that exception class and its subclasses (the closest class in
  the exception's MRO wins, as in starlette);
* ``@app.on_error(404)``: an ``HTTPError`` with that status (``NotFound``, a 404 from routing).

Without a handler, an ``HTTPError`` is answered with its status and message, and any other
exception is logged with its traceback on ``corkweb.error`` and answered 500. The body is JSON,
HTML or plain text following the request's ``Accept`` header; in debug mode a 500 shows the
traceback. A template error (a missing template, a syntax error, an error raised while
rendering) is logged with the template and the line; in debug mode the HTML answer is the
debug page (``corkweb/templates/debug.html``) showing the template's source around that line.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any

import orjson

from .debug_page import DebugReport, build_report
from .errors import HTTPError, RequestValidationError, reason_phrase
from .templating import TemplateErrorInfo, builtin_page, template_error_info

__all__ = ["ErrorHandlers", "render_error", "render_problem"]

log = logging.getLogger("corkweb.error")

ErrorHandler = Callable[[BaseException, Any, Any], Any]


def _wants(req: Any) -> str:
    accept = req.get_header("accept") or ""
    if "json" in accept and "html" not in accept:
        return "json"
    if "html" in accept:
        return "html"
    return "text"


def render_error(res: Any, req: Any, status: int, message: str,
                 headers: list[tuple[str, str]] | None = None, detail: str | None = None,
                 template: TemplateErrorInfo | None = None,
                 report: DebugReport | None = None) -> None:
    """Answer ``status`` with ``message`` in the format the client accepts.

    ``detail`` (a traceback), ``template`` (where a template error is) and ``report`` (the
    exception, the developer's frames, the request) are given only in debug mode: the HTML
    answer is then corkweb's debug page, JSON and text carry the same facts.
    """
    if report is not None:
        message = report.headline
        detail = report.traceback
    res.clear_head()
    res.write_status(status)
    for name, value in headers or ():
        res.write_header(name, value)
    phrase = reason_phrase(status)
    kind = _wants(req)
    if kind == "json":
        payload: dict[str, Any] = {"status": status, "error": phrase, "message": message}
        if report is not None:
            payload.update(report.as_dict())
        elif detail:
            payload["traceback"] = detail
        if template is not None:
            payload["template"] = {"template": template.template, "line": template.lineno,
                                   "error": template.message}
        res.write_header("content-type", "application/json")
        res.end(orjson.dumps(payload))
    elif kind == "html":
        res.write_header("content-type", "text/html; charset=utf-8")
        res.end(_html_page(req, status, phrase, message, detail, template, report))
    else:
        text = f"{status} {phrase}" + (f": {message}" if message != phrase else "") + "\n"
        if template is not None:
            text += f"template error: {template.summary()}\n"
        res.end(text + (report.as_text() if report is not None else detail or ""))


def render_problem(res: Any, exc: RequestValidationError) -> None:
    """Answer a validation failure as RFC 9457 ``application/problem+json`` (whatever the
    ``Accept`` header: API clients read it, and browsers show JSON well enough)."""
    res.clear_head()
    res.write_status(exc.status)
    res.write_header("content-type", "application/problem+json")
    res.end(orjson.dumps({"type": "about:blank", "title": reason_phrase(exc.status),
                          "status": exc.status, "detail": exc.message, "errors": exc.errors},
                         default=repr))


def _html_page(req: Any, status: int, phrase: str, message: str, detail: str | None,
               template: TemplateErrorInfo | None, report: DebugReport | None = None) -> str:
    """The package's error page, or its debug page when there is something to debug."""
    debug = detail is not None or template is not None
    try:
        if debug:
            return builtin_page(
                "debug.html", status=status, phrase=phrase, message=message, detail=detail,
                template=template, request_line=f"{req.method} {req.url}", report=report,
                source_lines=template.source_lines() if template is not None else [],
            )
        return builtin_page("error.html", status=status, phrase=phrase, message=message)
    except Exception:  # a broken package install must not hide the original error
        log.exception("corkweb's built-in error page failed; answering a plain one")
        extra = f"<pre>{html.escape(detail)}</pre>" if detail else ""
        return (
            f"<!doctype html><html><head><title>{status} {html.escape(phrase)}</title></head>"
            f"<body><h1>{status} {html.escape(phrase)}</h1><p>{html.escape(message)}</p>"
            f"{extra}</body></html>"
        )


def _rid(req: Any) -> str:
    """`` (request id …)`` for log lines when the RequestID middleware gave the request one."""
    rid = getattr(req, "request_id", None)
    return f" (request id {rid})" if rid else ""


class ErrorHandlers:
    """The registered handlers, looked up by exception class (MRO) and by status."""

    def __init__(self) -> None:
        self.by_class: dict[type[BaseException], ErrorHandler] = {}
        self.by_status: dict[int, ErrorHandler] = {}
        self.fallback: ErrorHandler | None = None
        self.debug = False
        #: ``fn(error, res, req)`` told of every error before it is answered (tracing, error
        #: reporting); they cannot change the answer.
        self.observers: list[ErrorHandler] = []

    def add(self, key: type[BaseException] | int | None, handler: ErrorHandler) -> None:
        if key is None:
            self.fallback = handler
        elif isinstance(key, int):
            self.by_status[key] = handler
        elif isinstance(key, type) and issubclass(key, BaseException):
            self.by_class[key] = handler
        else:
            raise TypeError(f"on_error() takes an exception class or a status, got {key!r}")

    def find(self, exc: BaseException) -> ErrorHandler | None:
        for cls in type(exc).__mro__:
            handler = self.by_class.get(cls)
            if handler is not None:
                return handler
        if isinstance(exc, HTTPError):
            handler = self.by_status.get(exc.status)
            if handler is not None:
                return handler
        return self.fallback

    def __call__(self, exc: BaseException, res: Any, req: Any) -> Any:
        """The server's error hook: a user handler if one matches, else the default answer."""
        for observe in self.observers:
            try:
                observe(exc, res, req)
            except Exception:
                log.exception("error observer %r raised while observing %r", observe, exc)
        handler = self.find(exc)
        if handler is not None:
            return handler(exc, res, req)
        self.default(exc, res, req)
        return None

    def default(self, exc: BaseException, res: Any, req: Any) -> None:
        if isinstance(exc, RequestValidationError):
            render_problem(res, exc)
            return
        if isinstance(exc, HTTPError):
            if exc.status >= 500:
                log.error("%s %s%s answered %d: %s", req.method, req.path, _rid(req),
                          exc.status, exc.message)
            render_error(res, req, exc.status, exc.message, exc.headers)
            return
        template = template_error_info(exc)
        if template is not None:
            log.error("template error: %s (handler for %s %s%s)", template.summary(),
                      req.method, req.path, _rid(req), exc_info=exc)
        else:
            log.error("unhandled error in handler for %s %s%s", req.method, req.path,
                      _rid(req), exc_info=exc)
        if not self.debug:
            render_error(res, req, 500, "Internal Server Error")
            return
        report = build_report(exc, res, req)
        render_error(res, req, 500, "Internal Server Error", None, report.traceback, template,
                     report)
