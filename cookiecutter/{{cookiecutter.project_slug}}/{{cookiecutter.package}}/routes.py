"""The routes: pages at the root, a JSON API in the ``/api`` route group.

The API's handlers are typed: their parameters say where each input comes from (``name``
from the path, ``payload`` from the JSON body) and they return what they answer. Classic
``(res, req)`` handlers, like the pages below, work side by side with them.
"""

from __future__ import annotations

from typing import Any

from corkweb import App

from .settings import Settings


def register(app: App, settings: Settings) -> None:
    api = app.router("/api", tags=["api"])  # a route group: a prefix, middleware, tags

    @api.get("/info")
    def info() -> dict:
        return {"name": settings.app_name, "debug": settings.debug}  # returned -> JSON

    @api.get("/hello/:name")
    def hello(name: str) -> dict:
        return {"message": f"Hello, {name}!"}

    @api.post("/echo", status=201)
    def echo(payload: dict[str, Any]) -> dict:
        # not a JSON object: 422; invalid JSON: 400; not sent as JSON: 415
        return {"received": payload}

    @app.get("/")
    def home(res, req):
{%- if cookiecutter.with_templates == "yes" %}
        res.render("index.html", app_name=settings.app_name, title="Welcome")
{%- else %}
        res.end(f"{settings.app_name} is running. Try /api/info.")
{%- endif %}
{%- if cookiecutter.with_templates == "yes" and cookiecutter.with_websocket == "yes" %}

    @app.get("/chat")
    def chat(res, req):
        res.render("chat.html", app_name=settings.app_name, title="Chat")
{%- endif %}
