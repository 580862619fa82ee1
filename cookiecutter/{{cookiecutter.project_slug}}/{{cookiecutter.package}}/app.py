"""The app factory: ``create_app(settings)`` builds a new, fully configured app."""

from __future__ import annotations

from pathlib import Path

from corkweb import App

from . import {% if cookiecutter.database != "none" %}notes, {% endif %}{% if cookiecutter.with_websocket == "yes" %}realtime, {% endif %}routes
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
        title=settings.app_name,
        openapi="/openapi.json",  # the API described as OpenAPI 3.1 (app.openapi())
    )
    app.static("/static", HERE / "static")
    routes.register(app, settings)
{%- if cookiecutter.database != "none" %}
    notes.register(app, settings)
{%- endif %}
{%- if cookiecutter.with_websocket == "yes" %}
    realtime.register(app)
{%- endif %}
    return app
