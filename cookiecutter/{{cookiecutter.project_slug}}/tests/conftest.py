"""The ``client`` fixture: the app on a real socket, with httpx and WebSocket clients."""

import pytest
from corkweb.testing import TestClient

from {{ cookiecutter.package }} import Settings, create_app


@pytest.fixture
def settings():
    return Settings(app_name="Test App")


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as client:
        yield client
