"""OpenTelemetry tracing (``pip install 'corkweb[tracing]'``: the OpenTelemetry API and SDK).

    tracing = Tracing()                  # the global TracerProvider, or tracer_provider=...
    tracing.install(app)                 # app.use(tracing) + errors recorded on the spans

One SERVER span per request, named ``"{method} {route}"`` with the route pattern
(``GET /users/:id``: a bounded set of names, as the semantic conventions ask), started when the
route's middleware runs and ended when the answer is complete, a WebSocket upgraded (``101``)
or the client went away. Attributes follow the stable HTTP semantic conventions:
``http.request.method``, ``http.route``, ``url.path``, ``url.query``, ``url.scheme``,
``network.protocol.version``, ``server.address``, ``server.port``, ``client.address``,
``user_agent.original``, ``http.response.status_code``; a ``5xx`` answer sets the span's
status to ERROR with ``error.type``, and an exception raised by the handler is recorded on the
span as an event with its traceback (``install`` registers the error observer for this).

**Propagation.** The incoming ``traceparent``/``tracestate`` (W3C Trace Context, or whatever
the global propagator reads) make the span a child of the caller's. Outgoing: corkweb keeps no
hidden "current request" (no context-local), so a handler passes its request's context on
explicitly — ``tracing.inject(req, headers)`` adds ``traceparent`` to the headers of a call it
makes, ``tracing.context(req)`` is the OpenTelemetry ``Context`` (``tracer.start_span(...,
context=tracing.context(req))`` for a child span), and ``with tracing.activate(req):`` makes the
span current for a block of code that uses OpenTelemetry's implicit context (an instrumented
client library). ``req.span`` is the span itself. ``response_header=True`` also answers with
``traceresponse`` (W3C Trace Context Level 2), so a browser or a test can see the trace id.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, MutableMapping
from typing import Any

from ..errors import HTTPError

__all__ = ["Tracing"]


try:
    from opentelemetry.propagators.textmap import Getter as _GetterBase
except ImportError:  # pragma: no cover - without the extra, Tracing() says what to install
    _GetterBase = object  # type: ignore[misc,assignment]


class _HeaderGetter(_GetterBase):
    """OpenTelemetry's ``Getter`` over the raw ``(name, value)`` byte pairs of a request."""

    def get(self, carrier: Any, key: str) -> list[str] | None:
        raw = key.lower().encode("latin-1")
        found = [v.decode("latin-1") for n, v in carrier if n == raw]
        return found or None

    def keys(self, carrier: Any) -> list[str]:
        return [n.decode("latin-1") for n, _ in carrier]


_GETTER = _HeaderGetter()


class Tracing:
    """The middleware; see the module docstring.

    ``Tracing(tracer_provider=None, propagator=None, response_header=False)``: ``None`` uses
    OpenTelemetry's global provider and propagator (``opentelemetry.propagate``'s, W3C Trace
    Context and Baggage by default).
    """

    def __init__(self, *, tracer_provider: Any = None, propagator: Any = None,
                 response_header: bool = False) -> None:
        try:
            from opentelemetry import propagate, trace
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("Tracing needs OpenTelemetry: pip install 'corkweb[tracing]'"
                              ) from None
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self._trace = trace
        self._kind = SpanKind.SERVER
        self._status = Status
        self._error = StatusCode.ERROR
        self.tracer = trace.get_tracer("corkweb", tracer_provider=tracer_provider)
        self.propagator = propagator if propagator is not None else propagate.get_global_textmap()
        self.response_header = response_header

    def install(self, app: Any) -> Tracing:
        """``app.use(self)`` and ``app.observe_errors(self.record_error)``."""
        app.use(self)
        app.observe_errors(self.record_error)
        return self

    # -- the middleware -----------------------------------------------------------------------

    def __call__(self, res: Any, req: Any, data: Any) -> Any:
        headers = req.headers
        parent = self.propagator.extract(headers, getter=_GETTER)
        route = req.route or req.path
        attributes: dict[str, Any] = {
            "http.request.method": req.method,
            "http.route": route,
            "url.path": req.path,
            "url.scheme": res.get_scheme(),
            "network.protocol.version": req.version,
        }
        if req.query:
            attributes["url.query"] = req.query
        for name, value in headers:
            if name == b"host":
                host, port = _split_host(value.decode("latin-1"))
                attributes["server.address"] = host
                if port is not None:
                    attributes["server.port"] = port
            elif name == b"user-agent":
                attributes["user_agent.original"] = value.decode("latin-1")
        client = res.get_remote_address()
        if client is not None:
            attributes["client.address"] = client
        span = self.tracer.start_span(f"{req.method} {route}", context=parent,
                                      kind=self._kind, attributes=attributes)
        req.span = span
        if self.response_header:
            ctx = span.get_span_context()
            res.before_head(lambda res: res.write_header(
                "traceresponse", f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-"
                                 f"{int(ctx.trace_flags):02x}"))
        res.on_complete(_End(self, span))
        return data if data is not None else True

    def _end(self, span: Any, res: Any) -> None:
        status = 499 if res.aborted else res.status
        if status != 499:
            span.set_attribute("http.response.status_code", status)
        if status >= 500 and status != 499:
            # An exception recorded by record_error already named the error type.
            if not (getattr(span, "attributes", None) or {}).get("error.type"):
                span.set_status(self._status(self._error))
                span.set_attribute("error.type", str(status))
        span.end()

    def record_error(self, exc: BaseException, res: Any, req: Any) -> None:
        """The error observer: record what a handler raised on its request's span (an
        ``HTTPError`` below 500 is an answer, not a failure, and is not recorded)."""
        span = getattr(req, "span", None)
        if span is None or not span.is_recording():
            return
        if isinstance(exc, HTTPError) and exc.status < 500:
            return
        span.record_exception(exc)
        span.set_status(self._status(self._error, f"{type(exc).__name__}: {exc}"))
        span.set_attribute("error.type", type(exc).__qualname__)

    # -- propagation for the handler's own calls ---------------------------------------------

    def context(self, req: Any) -> Any:
        """The OpenTelemetry ``Context`` whose current span is ``req``'s."""
        span = getattr(req, "span", None)
        if span is None:
            raise RuntimeError("no span: the Tracing middleware does not run for this route")
        return self._trace.set_span_in_context(span)

    def inject(self, req: Any, headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
        """Add ``traceparent`` (and ``tracestate``) for ``req``'s span to ``headers`` of an
        outgoing call; returns ``headers``."""
        self.propagator.inject(headers, context=self.context(req))
        return headers

    @contextlib.contextmanager
    def activate(self, req: Any) -> Iterator[Any]:
        """Make ``req``'s span OpenTelemetry's current span inside the ``with`` block (for
        instrumented libraries that read the implicit context); restored on exit."""
        from opentelemetry import context as otel_context

        token = otel_context.attach(self.context(req))
        try:
            yield req.span
        finally:
            otel_context.detach(token)


class _End:
    """The ``on_complete`` hook of one span."""

    __slots__ = ("tracing", "span")

    def __init__(self, tracing: Tracing, span: Any) -> None:
        self.tracing = tracing
        self.span = span

    def __call__(self, res: Any) -> None:
        self.tracing._end(self.span, res)


def _split_host(text: str) -> tuple[str, int | None]:
    """``example.com:8080`` -> ``("example.com", 8080)``; ``[::1]:80`` -> ``("::1", 80)``."""
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[1:end], text[end + 1:]
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    else:
        host, port = text, ""
    return host, int(port) if port.isdigit() else None
