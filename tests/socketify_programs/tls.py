# ruff: noqa: UP031  (socketify's examples format with %)
"""HTTPS with socketify's App(AppOptions(...))."""

import os

from socketify import App, AppOptions

app = App(AppOptions(key_file_name=os.environ["KEY"], cert_file_name=os.environ["CERT"],
                     passphrase="1234"))
app.get("/", lambda res, req: res.end("Hello over TLS"))
app.listen(int(os.environ.get("PORT", "0")),
           lambda config: print("listening on %d" % config.port, flush=True))
app.run()
