"""The routes: pages at the root, a JSON API in the ``/api`` route group."""

from __future__ import annotations

from corkweb import App, BadRequest

from .settings import Settings


def register(app: App, settings: Settings) -> None:
    api = app.router("/api")  # a route group: a prefix (and optional middleware)

    @api.get("/info")
    def info(res, req):
        res.end({"name": settings.app_name, "debug": settings.debug})  # dict -> JSON

    @api.get("/hello/:name")
    def hello(res, req):
        res.end({"message": f"Hello, {req.get_parameter('name')}!"})

    @api.post("/echo")
    async def echo(res, req):
        payload = await res.get_json()  # invalid JSON answers 400 by itself
        if not isinstance(payload, dict):
            raise BadRequest("send a JSON object")
        res.write_status(201).end({"received": payload})

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
