"""App for the CLI, worker, TLS and access-log tests: started as ``corkweb run cli_app:app``."""

import asyncio
import os

from corkweb import App, stream_events

app = App(templates=None)


@app.on_shutdown
def stopped():
    print(f"on_shutdown ran in {os.getpid()}", flush=True)


@app.get("/")
def home(res, req):
    res.end("ok")


@app.get("/pid")
def pid(res, req):
    res.end(str(os.getpid()))


@app.get("/slow")
async def slow(res, req):
    print("slow request started", flush=True)  # the tests' signal that it is in flight
    await asyncio.sleep(float(req.get_query("s") or 1.0))
    res.end("finished")


@app.get("/users/:id", name="user")
def user(res, req):
    res.end({"id": req.get_parameter("id")})


app.ws("/ws", {"message": lambda ws, msg, opcode: ws.send(msg, opcode)})


async def ticks():
    yield "first"
    while True:
        await asyncio.sleep(3600)
        yield "never"


@app.get("/events")
def events(res, req):
    print("event stream started", flush=True)
    return stream_events(res, req, ticks(), check=0.1)


def create_app():
    """A factory, for ``--factory``."""
    other = App(templates=None)
    other.get("/")(lambda res, req: res.end("from factory"))
    return other
