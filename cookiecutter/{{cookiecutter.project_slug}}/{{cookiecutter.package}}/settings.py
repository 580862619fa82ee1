"""Settings, read once from environment variables (twelve-factor style)."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    app_name: str = "{{ cookiecutter.project_name }}"
    host: str = "127.0.0.1"
    port: int = 8000
    debug: bool = False
{%- if cookiecutter.database == "postgres" %}
    database_url: str = "postgresql://postgres@127.0.0.1:5432/{{ cookiecutter.package }}"
{%- elif cookiecutter.database == "sqlite" %}
    database_url: str = "{{ cookiecutter.package }}.db"
{%- endif %}

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            app_name=env.get("APP_NAME", cls.app_name),
            host=env.get("HOST", cls.host),
            port=int(env.get("PORT", cls.port)),
            debug=_flag(env.get("DEBUG", "0")),
{%- if cookiecutter.database != "none" %}
            database_url=env.get("DATABASE_URL", cls.database_url),
{%- endif %}
        )
