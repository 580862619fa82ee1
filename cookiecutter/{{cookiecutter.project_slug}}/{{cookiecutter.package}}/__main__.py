"""``python -m {{ cookiecutter.package }}``: serve the app with the settings from the environment."""

from .app import create_app
from .settings import Settings


def main() -> None:
    settings = Settings.from_env()
    app = create_app(settings)
    app.run(host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
