"""HTTP tests: JSON endpoints, {% if cookiecutter.with_templates == "yes" %}pages, {% endif %}static files and settings."""

import asyncio

from {{ cookiecutter.package }} import Settings


def test_info_is_json(client):
    r = client.get("/api/info")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"name": "Test App", "debug": False}


def test_route_parameter(client):
    assert client.get("/api/hello/ada").json() == {"message": "Hello, ada!"}


def test_echo_and_bad_json(client):
    r = client.post("/api/echo", json={"a": 1})
    assert r.status_code == 201 and r.json() == {"received": {"a": 1}}
    assert client.post("/api/echo", content=b"{oops",
                       headers={"content-type": "application/json"}).status_code == 400
    assert client.post("/api/echo", content=b"{}").status_code == 415  # not sent as JSON
    r = client.post("/api/echo", json=["not", "an", "object"])
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body"]


def test_openapi_document(client):
    doc = client.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0" and doc["info"]["title"] == "Test App"
    assert {"/api/info", "/api/hello/{name}", "/api/echo"} <= set(doc["paths"])


def test_async_client(client):
    async def main():
        async with client.async_client() as http:
            return await asyncio.gather(*(http.get(f"/api/hello/{i}") for i in range(3)))

    assert [r.json()["message"] for r in asyncio.run(main())] == [
        "Hello, 0!", "Hello, 1!", "Hello, 2!"]


def test_home_page(client):
    r = client.get("/")
    assert r.status_code == 200
{%- if cookiecutter.with_templates == "yes" %}
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>Welcome · Test App</title>" in r.text  # base.html, extended
    assert '<link rel="stylesheet" href="/static/style.css">' in r.text
{%- else %}
    assert "Test App is running" in r.text
{%- endif %}


def test_static_file(client):
    r = client.get("/static/style.css")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/css")


def test_unknown_path_is_404(client):
    assert client.get("/no/such/page").status_code == 404


def test_settings_from_environment():
    settings = Settings.from_env({"PORT": "9000", "DEBUG": "true", "APP_NAME": "X"})
    assert settings == Settings(app_name="X", host="127.0.0.1", port=9000, debug=True)
    assert Settings.from_env({}) == Settings()
