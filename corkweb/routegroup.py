"""``RouteGroup``: routes under a common prefix, with common middleware and dependencies.

``app.router(prefix, *middlewares, dependencies=[...], tags=[...])`` returns one; ``App`` is
itself the root group. A group only records: each decorator call registers the route on the
app with the group's prefix, middleware, dependencies and tags joined in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import typed

if TYPE_CHECKING:
    from .app import App
    from .websocket import WebSocketRoute

__all__ = ["RouteGroup"]


@dataclass
class RouteGroup:
    """Routes under a common ``prefix`` with common middleware (``app.router(prefix, *mws)``).

    A group is data: its routes are copied into the app, with the prefix and middleware, when
    the app freezes. Groups nest: ``api.router("/v1", auth)``.
    """

    app: App
    prefix: str = ""
    middlewares: tuple[Callable[..., Any], ...] = ()
    dependencies: tuple[Any, ...] = ()  # run before each route (docs/dependencies.md)
    tags: tuple[str, ...] = ()  # OpenAPI tags of the group's routes

    def router(self, prefix: str = "", *middlewares: Callable[..., Any],
               dependencies: Iterable[Any] = (), tags: Iterable[str] = ()) -> RouteGroup:
        """A nested group: prefixes join, middleware, dependencies and tags add up."""
        return RouteGroup(self.app, self.prefix + prefix, self.middlewares + middlewares,
                          self.dependencies + tuple(dependencies), self.tags + tuple(tags))

    def route(self, method: str, path: str, handler: Callable[..., Any] | None = None, *,
              name: str | None = None, **options: Any) -> Any:
        """Register ``handler`` for ``method`` at ``prefix + path``, behind the group's
        middleware; a decorator without ``handler``. Returns the handler."""
        return self.app.route(method, self.prefix + path, handler, name=name,
                              middlewares=self.middlewares, **typed.group_options(self, options))

    def get(self, path: str, handler: Callable[..., Any] | None = None, *,
            name: str | None = None, **options: Any) -> Any:
        """``@app.get("/users/:id")`` or ``app.get("/users/:id", handler)``: ``handler(res,
        req)`` answers GET at ``path`` (``:name`` is one segment, ``*`` the rest). ``name``
        is for ``app.url_for``. Returns the handler. HEAD is answered by the GET route."""
        return self.route("GET", path, handler, name=name, **options)

    def post(self, path: str, handler: Callable[..., Any] | None = None, *,
             name: str | None = None, **options: Any) -> Any:
        """Register ``handler`` for POST at ``path``; a decorator without ``handler``."""
        return self.route("POST", path, handler, name=name, **options)

    def put(self, path: str, handler: Callable[..., Any] | None = None, *,
            name: str | None = None, **options: Any) -> Any:
        """Register ``handler`` for PUT at ``path``; a decorator without ``handler``."""
        return self.route("PUT", path, handler, name=name, **options)

    def delete(self, path: str, handler: Callable[..., Any] | None = None, *,
               name: str | None = None, **options: Any) -> Any:
        """Register ``handler`` for DELETE at ``path``; a decorator without ``handler``."""
        return self.route("DELETE", path, handler, name=name, **options)

    def patch(self, path: str, handler: Callable[..., Any] | None = None, *,
              name: str | None = None, **options: Any) -> Any:
        """Register ``handler`` for PATCH at ``path``; a decorator without ``handler``."""
        return self.route("PATCH", path, handler, name=name, **options)

    def options(self, path: str, handler: Callable[..., Any] | None = None, *,
                name: str | None = None, **options: Any) -> Any:
        """Register ``handler`` for OPTIONS at ``path``; a decorator without ``handler``."""
        return self.route("OPTIONS", path, handler, name=name, **options)

    def head(self, path: str, handler: Callable[..., Any] | None = None, *,
             name: str | None = None, **options: Any) -> Any:
        """Register ``handler`` for HEAD at ``path``; a decorator without ``handler``."""
        return self.route("HEAD", path, handler, name=name, **options)

    def connect(self, path: str, handler: Callable[..., Any] | None = None, *,
                name: str | None = None, **options: Any) -> Any:
        """Register ``handler`` for CONNECT at ``path``; a decorator without ``handler``."""
        return self.route("CONNECT", path, handler, name=name, **options)

    def trace(self, path: str, handler: Callable[..., Any] | None = None, *,
              name: str | None = None, **options: Any) -> Any:
        """Register ``handler`` for TRACE at ``path``; a decorator without ``handler``."""
        return self.route("TRACE", path, handler, name=name, **options)

    def any(self, path: str, handler: Callable[..., Any] | None = None, *,
            name: str | None = None, **options: Any) -> Any:
        """Register ``handler`` for every method at ``path`` (a method route wins over it)."""
        return self.route("ANY", path, handler, name=name, **options)

    # -- WebSocket ------------------------------------------------------------------------

    def ws(self, path: str, behavior: dict[str, Any] | None = None) -> WebSocketRoute:
        """A WebSocket route (socketify's ``app.ws``): behaviours in a dict, or set later
        with the returned route's decorators (``@chat.on_message``). See docs/websockets.md."""
        return self.app._add_ws(self.prefix + path, behavior, self.middlewares)

    # -- hosted ASGI/WSGI applications (corkweb/asgi/) ---------------------------------------
    def mount(self, prefix: str, target: Any, **options: Any) -> Any:
        """Serve an ASGI or WSGI application (Starlette, FastAPI, Django, Flask...) under
        ``prefix``, so a project can move to corkweb route by route. Options: ``interface``
        (``"auto"``, ``"asgi"``, ``"wsgi"``), ``lifespan``, ``threads``; docs/asgi-wsgi.md."""
        from .asgi.host import mount

        return mount(self, prefix, target, **options)

    # -- static files (corkweb/static.py) ----------------------------------------------------
    def static(self, prefix: str, directory: str | os.PathLike[str], **options: Any) -> Any:
        """Serve the files of ``directory`` under ``prefix`` (``GET prefix/:file<path>``).

        Options: ``index``, ``max_age``, ``precompressed``, ``allow_hidden``, ``inline_max``;
        see ``docs/static-files.md``. Returns the :class:`corkweb.static.StaticFiles` handler.
        """
        from .static import StaticFiles

        files = StaticFiles(directory, **options)
        files.register(self, prefix)
        return files
