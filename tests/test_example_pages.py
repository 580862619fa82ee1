"""examples/pages: templates extending a base layout, escaping, the stylesheet."""

from __future__ import annotations

import pytest
from example_loader import load_example

from corkweb.testing import TestClient


@pytest.fixture(scope="module")
def client():
    with TestClient(load_example("pages").app) as client:
        yield client


def test_home_extends_the_layout(client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    html = r.text
    assert '<link rel="stylesheet" href="/static/style.css">' in html
    assert '<h1 id="title">Home</h1>' in html
    assert '<a href="/posts/corking">Why corking</a>' in html


def test_titles_and_query_values_are_escaped(client) -> None:
    assert "Escaping &lt;b&gt;matters&lt;/b&gt;" in client.get("/").text
    r = client.get("/hello", params={"name": "<script>x</script>"})
    assert "Hello, &lt;script&gt;x&lt;/script&gt;!" in r.text


def test_post_page_and_missing_post(client) -> None:
    assert "One write per response." in client.get("/posts/corking").text
    r = client.get("/posts/nope", headers={"accept": "text/html"})
    assert r.status_code == 404 and "no post" in r.text


def test_stylesheet(client) -> None:
    r = client.get("/static/style.css")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/css")
    assert "rgb(138, 75, 8)" in r.text
    assert client.get("/static/../app.py").status_code == 404
