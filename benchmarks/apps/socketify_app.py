"""socketify.py serving the benchmark workloads (uWebSockets in C++ under CFFI).

socketify has no Jinja2 integration of its own: ``app.template`` takes any object with a
``render(name, **kw)`` method, so an Environment built once is wrapped here.
Run from the repository root: ``python -m benchmarks.apps.socketify_app PORT``.
"""
from __future__ import annotations

import jinja2
from socketify import App, AppListenOptions

from benchmarks.apps.common import (
    HOST,
    MESSAGE,
    PLAINTEXT,
    ROWS,
    TEMPLATE,
    TEMPLATES_DIR,
    TITLE,
    port,
    static_dir,
)


class Jinja2Template:
    """The engine object that ``res.render`` calls."""

    def __init__(self, directory: str) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=jinja2.select_autoescape(),
        )

    def render(self, name: str, **context) -> str:
        return self.env.get_template(name).render(**context)


def plaintext(res, req):
    res.write_header("Content-Type", "text/plain").end(PLAINTEXT)


def json_(res, req):
    res.end(MESSAGE)


def user(res, req):
    res.write_header("Content-Type", "text/plain").end("User " + req.get_parameter(0))


def page(res, req):
    res.render(TEMPLATE, rows=ROWS, title=TITLE)


async def upload(res, req):
    body = await res.get_data()  # a BytesIO
    res.write_header("Content-Type", "text/plain")
    res.end(str(body.getbuffer().nbytes))


def main() -> None:
    app = App()
    app.template(Jinja2Template(TEMPLATES_DIR))
    app.get("/plaintext", plaintext)
    app.get("/json", json_)
    app.get("/user/:id", user)
    app.get("/page", page)
    app.post("/upload", upload)
    app.static("/static", static_dir())
    app.ws("/ws", {"message": lambda ws, msg, opcode: ws.send(msg, opcode)})
    # pub/sub fan-out (benchmarks/fanout.py)
    app.ws("/sub", {"open": lambda ws: ws.subscribe("fanout")})
    app.ws("/pub", {"message": lambda ws, msg, opcode: app.publish("fanout", msg, opcode)})
    app.listen(AppListenOptions(port=port(), host=HOST))
    app.run()


if __name__ == "__main__":
    main()
