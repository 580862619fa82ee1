"""Prometheus metrics (``pip install 'corkweb[metrics]'``, the ``prometheus-client`` package).

    metrics = Metrics()
    metrics.install(app)         # app.use(metrics), GET /metrics, WebSockets and pub/sub counted

Series (the prefix is ``corkweb`` unless ``prefix=`` says otherwise):

* ``corkweb_requests_total{method, route, status}`` — answered requests (a WebSocket
  upgrade counts with status 101);
* ``corkweb_request_duration_seconds{method, route, status}`` — a histogram of the time from
  the middleware to the last byte queued;
* ``corkweb_requests_in_flight`` — requests started and not yet answered;
* ``corkweb_websockets_open`` — open WebSockets of the app's ``app.ws`` routes;
* ``corkweb_pubsub_published_total`` and ``corkweb_pubsub_delivered_total`` — messages
  published by this app, and frames handed to subscribers (from this worker's publishes and
  from other workers' through Redis).

``route`` is the route pattern (``req.route``: ``/users/:id``), never the raw path, so the
number of series stays bounded whatever clients request. A client that goes away before its
answer is counted with status ``499`` (nginx's convention). Requests that match no route never
reach a middleware: ``install`` counts them through the app's error observer, in
``corkweb_requests_total`` with ``route="<unmatched>"`` and status 404 or 405 (no duration).

**Workers.** ``corkweb run --workers N`` runs N processes with their own counters. Set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory (created if missing; emptying it before
each start is the deployment's job, e.g. ``rm -rf`` in the unit's ``ExecStartPre``) and every
worker
writes its samples there (``corkweb run`` passes the environment to its workers);
``/metrics`` on any worker then reports the sum of all of them
(prometheus-client's multiprocess mode: counters and histograms summed, the two gauges summed
over the live workers).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import HTTPError

__all__ = ["Metrics"]

# A method outside these is labelled "other": a client cannot add series by inventing methods.
_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT",
                      "TRACE"))

DEFAULT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                   5.0, 10.0)
ENV_MULTIPROC = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """The middleware and the ``/metrics`` handler; see the module docstring.

    ``Metrics(prefix="corkweb", buckets=DEFAULT_BUCKETS, registry=<a new CollectorRegistry>)``.
    With ``PROMETHEUS_MULTIPROC_DIR`` set, the samples go to that directory and ``/metrics``
    aggregates every process that writes there.
    """

    def __init__(self, *, prefix: str = "corkweb", buckets: Iterable[float] = DEFAULT_BUCKETS,
                 registry: Any = "new") -> None:
        try:
            import prometheus_client as prom
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError("Metrics needs prometheus-client: pip install 'corkweb[metrics]'"
                              ) from None
        self._prom = prom
        self.multiprocess = bool(os.environ.get(ENV_MULTIPROC))
        if self.multiprocess:
            os.makedirs(os.environ[ENV_MULTIPROC], exist_ok=True)
        if registry == "new":
            registry = prom.CollectorRegistry(auto_describe=True)
        self.registry = registry
        labels = ("method", "route", "status")
        self.requests = prom.Counter(f"{prefix}_requests_total", "Answered HTTP requests",
                                     labels, registry=registry)
        self.duration = prom.Histogram(f"{prefix}_request_duration_seconds",
                                       "Time from the route's middleware to the last byte "
                                       "queued", labels, buckets=tuple(buckets),
                                       registry=registry)
        self.in_flight = prom.Gauge(f"{prefix}_requests_in_flight",
                                    "Requests started and not yet answered",
                                    registry=registry, multiprocess_mode="livesum")
        self.websockets = prom.Gauge(f"{prefix}_websockets_open", "Open WebSockets",
                                     registry=registry, multiprocess_mode="livesum")
        self.published = prom.Counter(f"{prefix}_pubsub_published_total",
                                      "Messages published", registry=registry)
        self.delivered = prom.Counter(f"{prefix}_pubsub_delivered_total",
                                      "Pub/sub frames handed to subscribers", registry=registry)
        self._series: dict[tuple[str, str | None, int], tuple[Any, Any]] = {}

    # -- the middleware --------------------------------------------------------------------------

    def __call__(self, res: Any, req: Any, data: Any) -> Any:
        self.in_flight.inc()
        res.on_complete(_Timer(self, req, time.perf_counter()))
        return data if data is not None else True

    def _done(self, req: Any, res: Any, started: float) -> None:
        self.in_flight.dec()
        status = 499 if res.aborted else res.status
        key = (req.method, req.route, status)
        # PERF: labels() builds and checks the label tuple each call (~3 µs for the two
        # series); the children are kept per (method, route, status) — a bounded set.
        pair = self._series.get(key)
        if pair is None:
            labels = (req.method, req.route or "<unmatched>", str(status))
            pair = self._series[key] = (self.requests.labels(*labels),
                                        self.duration.labels(*labels))
        pair[0].inc()
        pair[1].observe(time.perf_counter() - started)

    # -- the endpoint -----------------------------------------------------------------------

    def collect(self) -> bytes:
        """The exposition text of every series (of every worker in multiprocess mode)."""
        prom = self._prom
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = prom.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return bytes(prom.generate_latest(registry))
        return bytes(prom.generate_latest(self.registry))

    def endpoint(self, res: Any, req: Any) -> None:
        """``GET /metrics``: the Prometheus text format."""
        res.send(self.collect(), content_type=self._prom.CONTENT_TYPE_LATEST)

    def install(self, app: Any, path: str = "/metrics") -> Metrics:
        """``app.use(self)``, ``GET path`` answering :meth:`endpoint` (counted like any route),
        and, once the app starts, the open WebSockets of its ``app.ws`` routes and its pub/sub
        messages."""
        app.use(self)
        app.get(path, self.endpoint)
        app.observe_errors(self.count_unmatched)
        app.on_start(lambda: self.watch(app))
        return self

    def count_unmatched(self, exc: BaseException, res: Any, req: Any) -> None:
        """The error observer: count a request that matched no route (404/405), which no
        route's middleware saw."""
        if req.route is None and isinstance(exc, HTTPError):
            self.requests.labels(req.method if req.method in _METHODS else "other",
                                 "<unmatched>", str(exc.status)).inc()

    # -- WebSockets and pub/sub --------------------------------------------------------------------

    def watch(self, app: Any) -> None:
        """Count the open WebSockets of ``app``'s WebSocket routes and its pub/sub messages
        (``install`` calls it when the app starts, after every behaviour is set)."""
        from ..websocket import WebSocketRoute

        for _method, _path, handler, _name in app.routes:
            route = getattr(handler, "__self__", None)
            if isinstance(route, WebSocketRoute) and not getattr(route, "_metrics", False):
                route.open = _counted_open(self.websockets, route.open)
                route.close = _counted_close(self.websockets, route.close)
                route._metrics = True  # type: ignore[attr-defined]
        hub = app.pubsub
        if not isinstance(hub.backend, _CountingBackend):
            delivered = self.delivered

            def counted_deliver(topic: str, frame: bytes, sender: Any = None) -> int:
                reached: int = hub.deliver(topic, frame, sender)
                delivered.inc(reached)
                return reached

            # The backend is wrapped, not replaced: publishes are counted on the way in, and
            # every local fan-out (this worker's publishes and other workers' frames through
            # Redis) goes through the counting delivery.
            hub.backend = _CountingBackend(hub.backend, self.published)
            hub.backend.attach(counted_deliver)


class _CountingBackend:
    """A pub/sub backend that counts publishes and forwards everything to the real one."""

    def __init__(self, inner: Any, published: Any) -> None:
        self.inner = inner
        self.published = published

    def attach(self, deliver: Callable[[str, bytes, Any], int]) -> None:
        self.inner.attach(deliver)

    def publish(self, topic: str, frame: bytes, sender: Any) -> int:
        self.published.inc()
        return int(self.inner.publish(topic, frame, sender))

    def topic_added(self, topic: str) -> None:
        self.inner.topic_added(topic)

    def topic_removed(self, topic: str) -> None:
        self.inner.topic_removed(topic)

    def __getattr__(self, name: str) -> Any:  # start, stop, where, ... of a Redis backend
        return getattr(self.inner, name)


class _Timer:
    """The ``on_complete`` hook of one request (a small object, not a closure: 0.1 µs)."""

    __slots__ = ("metrics", "req", "started")

    def __init__(self, metrics: Metrics, req: Any, started: float) -> None:
        self.metrics = metrics
        self.req = req
        self.started = started

    def __call__(self, res: Any) -> None:
        self.metrics._done(self.req, res, self.started)


def _counted_open(gauge: Any, user: Callable[..., Any] | None) -> Callable[..., Any]:
    def open_(ws: Any) -> Any:
        gauge.inc()
        return user(ws) if user is not None else None

    return open_


def _counted_close(gauge: Any, user: Callable[..., Any] | None) -> Callable[..., Any]:
    def close(ws: Any, code: int, reason: Any) -> Any:
        gauge.dec()
        return user(ws, code, reason) if user is not None else None

    return close
