# ruff: noqa: UP031  (socketify's examples format with %)
"""Graceful shutdown: app.close() from a handler ends app.run(); on_shutdown runs."""

import os

from socketify import App

app = App()


@app.on_shutdown
def bye():
    print("on_shutdown ran", flush=True)


def shutdown(res, req):
    res.end("Good bye!")
    app.close()


app.get("/", lambda res, req: res.end("Hello!"))
app.get("/shutdown", shutdown)
app.listen(int(os.environ.get("PORT", "0")),
           lambda config: print("listening on %d" % config.port, flush=True))
app.run()
print("App Closed!", flush=True)
