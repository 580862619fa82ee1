"""The ``client`` fixture: the app on a real socket, with httpx and WebSocket clients."""
{%- if cookiecutter.database == "postgres" %}

import asyncio
import os

import asyncpg
import pytest
from corkweb.testing import PostgresNotInstalled, PostgresServer, TestClient

from {{ cookiecutter.package }} import Settings, create_app


@pytest.fixture(scope="session")
def postgres():
    """A throw-away PostgreSQL server for the test session, unless TEST_DATABASE_URL is set."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    try:
        server = PostgresServer()
    except PostgresNotInstalled as exc:
        pytest.skip(f"{exc}; or set TEST_DATABASE_URL")
    with server:
        yield server


async def _drop_tables(url):
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE IF EXISTS note")
    finally:
        await conn.close()


@pytest.fixture
def settings(postgres):
    if postgres is None:
        url = os.environ["TEST_DATABASE_URL"]
        asyncio.run(_drop_tables(url))
    else:
        url = postgres.create_database()  # a new empty database for each test
    return Settings(app_name="Test App", database_url=url)
{%- else %}

import pytest
from corkweb.testing import TestClient

from {{ cookiecutter.package }} import Settings, create_app
{%- if cookiecutter.database == "sqlite" %}


@pytest.fixture
def settings(tmp_path):
    return Settings(app_name="Test App", database_url=str(tmp_path / "test.db"))
{%- else %}


@pytest.fixture
def settings():
    return Settings(app_name="Test App")
{%- endif %}
{%- endif %}


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as client:
        yield client
