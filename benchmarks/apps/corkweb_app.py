"""corkweb serving the benchmark workloads.

Run from the repository root: ``python -m benchmarks.apps.corkweb_app PORT``.
"""
from __future__ import annotations

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
from corkweb import App

app = App(templates=TEMPLATES_DIR)


@app.get("/plaintext")
def plaintext(res, req):
    res.end(PLAINTEXT)


@app.get("/json")
def json_(res, req):
    res.end(MESSAGE)


@app.get("/user/:id")
def user(res, req):
    res.end("User " + req.get_parameter("id"))


@app.get("/page")
def page(res, req):
    res.render(TEMPLATE, rows=ROWS, title=TITLE)


@app.post("/upload")
async def upload(res, req):
    body = await res.get_data()
    res.end(str(len(body)))


app.static("/static", static_dir())
app.ws("/ws", {"message": lambda ws, msg, opcode: ws.send(msg, opcode)})
# pub/sub fan-out (benchmarks/fanout.py): subscribers on /sub, one publisher on /pub
app.ws("/sub", {"open": lambda ws: ws.subscribe("fanout")})
app.ws("/pub", {"message": lambda ws, msg, opcode: app.publish("fanout", msg, opcode)})

if __name__ == "__main__":
    app.run(host=HOST, port=port())
