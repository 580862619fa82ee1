"""App for tests/test_shutdown.py: a slow route, lifespan hooks that print markers."""

import asyncio
import sys

from corkweb import App

app = App(templates=None)


@app.on_start
async def started():
    print("on_start ran", flush=True)


@app.on_shutdown
def stopped():
    print("on_shutdown ran", flush=True)


@app.get("/slow")
async def slow(res, req):
    print("slow started", flush=True)  # the test's signal that a request is in flight
    await asyncio.sleep(1.0)
    res.end("finished")


@app.get("/")
def home(res, req):
    res.end("ok")


app.listen(int(sys.argv[1]), lambda config: print("listening", config["port"], flush=True))
app.run()
