# ruff: noqa: UP031  (socketify's examples format with %)
"""Hello world with listen handlers: the object socketify passes, AppListenOptions accepted,
a UNIX socket (``domain``), and a listen handler that raises without stopping the server."""

import os

from socketify import App, AppListenOptions

app = App()
app.get("/", lambda res, req: res.end("Hello World!"))


def announce(config):
    # socketify's handler reads attributes; corkweb's old dict form still works too.
    assert config["port"] == config.port
    print("listening on %d host %s" % (config.port, config.host), flush=True)


def broken(config):
    print("listening on %s" % config.domain, flush=True)
    raise RuntimeError("a listen handler that fails")


app.listen(AppListenOptions(port=int(os.environ.get("PORT", "0")), host="127.0.0.1"), announce)
app.listen(AppListenOptions(domain=os.environ["SOCK"]), broken)
app.run()
