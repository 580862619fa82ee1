"""{{ cookiecutter.project_name }}."""

from .app import create_app
from .settings import Settings

__all__ = ["create_app", "Settings"]
