"""App for the hung-worker test: ``/block`` blocks its worker's event loop."""

import os
import time

from corkweb import App

app = App(templates=None)


@app.get("/pid")
def pid(res, req):
    res.end(str(os.getpid()))


def stuck_in_a_blocking_call():
    time.sleep(3600)  # a handler that blocks the loop: what the heartbeat must notice


@app.get("/block")
def block(res, req):
    print(f"blocking {os.getpid()}", flush=True)
    stuck_in_a_blocking_call()
    res.end("never")
