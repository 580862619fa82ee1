"""Serving ASGI 3 and WSGI applications on corkweb's corked HTTP/1.1 + WebSocket core.

``corkweb run --interface asgi module:app`` (or ``wsgi``, or ``auto``) serves a Starlette,
FastAPI, Litestar, Django or Flask application; ``HostedApp(app)`` does the same from Python;
``app.mount("/legacy", other_app)`` hosts one under a prefix of a corkweb app. See
docs/asgi-wsgi.md.
"""

from __future__ import annotations

from .host import ASGIHandler, HostedApp, detect_interface, make_handler
from .lifespan import Lifespan, LifespanFailure

__all__ = ["ASGIHandler", "HostedApp", "Lifespan", "LifespanFailure", "detect_interface",
           "make_handler"]
