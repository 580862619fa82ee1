# ruff: noqa: UP031  (socketify's examples format with %)
"""Static files beside an explicit "/" route, the module-level sendfile, streaming with
send_chunk, and a template engine plugged in with app.template."""

import os

from socketify import App, sendfile

HERE = os.path.dirname(os.path.abspath(__file__))
app = App()


class Engine:
    """A socketify-style template plugin: any object with render(name, **context)."""

    def __init__(self, folder):
        from jinja2 import Environment, FileSystemLoader

        self.env = Environment(loader=FileSystemLoader(folder), autoescape=True)

    def render(self, name, **context):
        return self.env.get_template(name).render(**context)


app.template(Engine(os.path.join(HERE, "templates")))

# The folder first and the explicit route second for "/", the other way round for /assets.
app.static("/", os.path.join(HERE, "public"))


async def home(res, req):
    res.write_header("x-explicit", "yes")
    await sendfile(res, req, os.path.join(HERE, "public", "index.html"))


app.get("/", home)
app.get("/assets/", lambda res, req: res.end("assets index, explicit"))
app.static("/assets", os.path.join(HERE, "public"))


async def missing(res, req):
    await sendfile(res, req, os.path.join(HERE, "public", "nope.html"))


async def stream(res, req):
    size = int(req.get_query("size") or 1_000_000)
    block = bytes(range(256)) * 64  # 16 KiB
    sent = 0
    while not res.aborted:
        piece = block[: min(len(block), size - sent)]
        sent += len(piece)
        ok, done = await res.send_chunk(piece, size)
        if not ok or done:
            break


def page(res, req):
    res.render("home.html", title="Hi", message=req.get_query("m") or "there")


app.get("/missing", missing)
app.get("/stream", stream)
app.get("/page", page)

app.listen(int(os.environ.get("PORT", "0")),
           lambda config: print("listening on %d" % config.port, flush=True))
app.run()
