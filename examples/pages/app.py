"""Rendered pages: Jinja2 templates that extend a base layout, and a stylesheet.

Run it:  python examples/pages/app.py   (then open http://127.0.0.1:3000/)
"""

import os
from pathlib import Path

from corkweb import App, NotFound

HERE = Path(__file__).parent

POSTS = [
    {"slug": "corking", "title": "Why corking", "body": "One write per response."},
    {"slug": "routes", "title": "Routes", "body": "Static paths are one dict lookup."},
    {"slug": "escaping", "title": "Escaping <b>matters</b>",
     "body": "Autoescape is on for .html templates."},
]


def create_app() -> App:
    app = App(templates=HERE / "templates")
    app.static("/static", HERE / "static")  # /static/style.css

    @app.get("/", name="home")
    def home(res, req):
        res.render("index.html", title="Home", posts=POSTS)

    @app.get("/posts/:slug", name="post")
    def post(res, req):
        slug = req.get_parameter("slug")
        for p in POSTS:
            if p["slug"] == slug:
                return res.render("post.html", title=p["title"], post=p)
        raise NotFound(f"no post {slug!r}")

    @app.get("/hello")
    def hello(res, req):
        # The query string reaches the template, which escapes it.
        res.render("hello.html", title="Hello", visitor=req.get_query("name", "stranger"))

    return app


app = create_app()

if __name__ == "__main__":
    app.run(host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "3000")))
