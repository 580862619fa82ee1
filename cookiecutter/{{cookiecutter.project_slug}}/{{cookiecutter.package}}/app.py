"""The app factory: ``create_app(settings)`` builds a new, fully configured app."""

from __future__ import annotations

from pathlib import Path

from corkweb import App

{% if cookiecutter.with_websocket == "yes" -%}
from . import realtime, routes
{% else -%}
from . import routes
{% endif -%}
from .settings import Settings

HERE = Path(__file__).parent


def create_app(settings: Settings | None = None) -> App:
    settings = settings or Settings.from_env()
    app = App(
{%- if cookiecutter.with_templates == "yes" %}
        templates=HERE / "templates",
{%- else %}
        templates=None,
{%- endif %}
        debug=settings.debug,
    )
    app.static("/static", HERE / "static")
    routes.register(app, settings)
{%- if cookiecutter.with_websocket == "yes" %}
    realtime.register(app)
{%- endif %}
    return app
