"""App for tests/test_syscalls.py: run under strace, it answers on the port given in argv."""

import asyncio
import sys

from corkweb import App

app = App(templates=None)


@app.get("/headers")
def headers(res, req):
    res.write_status(200)
    res.write_header("x-one", "1")
    res.write_header("x-two", "2")
    res.write_header("x-three", "3")
    res.set_cookie("session", "abc", httponly=True)
    res.end("headers")


@app.get("/plain")
def plain(res, req):
    res.end("Hello, World!")


@app.get("/async")
async def after_await(res, req):
    await asyncio.sleep(0.01)
    res.write_header("x-after", "await")
    res.end("async")


app.run(port=int(sys.argv[1]))
