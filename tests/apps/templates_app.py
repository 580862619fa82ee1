"""App for tests/test_templates.py: run under strace, it renders pages from the repository's
shared ``templates/`` folder and prints ``ready <port>`` once it listens (port 0)."""

import asyncio
from pathlib import Path

from corkweb import App

app = App(templates=Path(__file__).resolve().parents[2] / "templates")


@app.get("/page")
def page(res, req):
    res.render("base.html", title="<script>alert(1)</script>")


@app.get("/async")
async def after_await(res, req):
    await asyncio.sleep(0)
    await res.render("base.html", title="async", headers={"x-after": "await"})


@app.get("/missing")
def missing(res, req):
    res.render("no-such-template.html")


def ready(info):
    print("ready", info["port"], flush=True)


app.listen(0, ready)
app.run()
